package gateway

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestSetModel(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"replace", `{"model":"gpt","messages":[]}`, `{"model":"up","messages":[]}`},
		{"insert", `{"messages":[]}`, `{"model":"up","messages":[]}`},
		{"insert-empty", `{ }`, `{"model":"up" }`},
		{"nested-model-untouched", `{"messages":[{"model":"x"}],"tools":{"model":1}}`, `{"model":"up","messages":[{"model":"x"}],"tools":{"model":1}}`},
		{"duplicates-all-replaced", `{"model":"a","x":1,"model":"b"}`, `{"model":"up","x":1,"model":"up"}`},
		{"escaped-key", `{"mod\u0065l":"sneaky"}`, `{"mod\u0065l":"up"}`},
		{"non-string-value", `{"model":{"a":[1,"}"]},"n":null}`, `{"model":"up","n":null}`},
		{"whitespace", "\n{ \"model\" : \"g\" , \"s\":\"\\\"model\\\"\" }\n", "\n{ \"model\" : \"up\" , \"s\":\"\\\"model\\\"\" }\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := setModel(nil, []byte(tt.in), []byte(`"up"`))
			if err != nil || string(got) != tt.want {
				t.Errorf("got %s %v, want %s", got, err, tt.want)
			}
			var m map[string]any
			if err := json.Unmarshal(got, &m); err != nil || m["model"] != "up" {
				t.Errorf("result %s does not decode with model up: %v", got, err)
			}
		})
	}
	for _, in := range []string{`[]`, `"x"`, `1`, `null`} {
		if _, err := setModel(nil, []byte(in), []byte(`"up"`)); err == nil {
			t.Errorf("%s: no error", in)
		}
	}
}

// FuzzSetModel: for every valid JSON object, the result is valid JSON whose
// model (under any parser's duplicate rule) is the deployment's, with every
// other member unchanged.
func FuzzSetModel(f *testing.F) {
	for _, s := range []string{`{"model":"a"}`, `{}`, `{"a":[{"model":1}],"model":null,"model":"z"}`, `{"\u006dodel":1}`, `[1]`, `null`,
		`[{"model":1},{"model":2}]`, `{"model":{"model":[{"model":3}]},"x":{}}`, `{"m":[],"model":[],"model":{}}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		if !json.Valid([]byte(in)) {
			return
		}
		out, err := setModel(nil, []byte(in), []byte(`"up"`))
		var orig map[string]any
		if json.Unmarshal([]byte(in), &orig) != nil || orig == nil { // null decodes into a map too
			if err == nil {
				t.Fatalf("%s is not an object but was accepted", in)
			}
			return
		}
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		var m map[string]any
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatalf("%s → invalid %s", in, out)
		}
		if m["model"] != "up" {
			t.Fatalf("%s → model %v", in, m["model"])
		}
		delete(m, "model")
		delete(orig, "model")
		a, _ := json.Marshal(m)
		b, _ := json.Marshal(orig)
		if string(a) != string(b) {
			t.Fatalf("%s → other members changed: %s", in, out)
		}
	})
}

func TestValidJSON(t *testing.T) {
	deep := strings.Repeat("[", maxJSONDepth) + strings.Repeat("]", maxJSONDepth)
	tooDeep := "[" + deep + "]"
	for _, s := range []string{
		`{}`, `[]`, ` {"a":[1,-2.5e+3,"x\u00e9\n",true,false,null,{}]} `, `"s"`, `0`, `-0.0E-0`, `{"a":{"b":[[]]}}`,
		deep, tooDeep, ``, ` `, `{`, `[1,]`, `{"a":1,}`, `{"a"}`, `{1:2}`, `01`, `1.`, `.5`, `-`, `1e`, `+1`,
		`"\x"`, `"\u12"`, "\"a\x01\"", "\"\xff\"", `nul`, `truex`, `[1 2]`, `{"a":1 "b":2}`, `[}`, `{]`, `"`,
	} {
		if got, want := validJSON([]byte(s)), json.Valid([]byte(s)); got != want {
			t.Errorf("validJSON(%.40q) = %v, json.Valid says %v", s, got, want)
		}
	}
}

// FuzzValidJSON holds validJSON to encoding/json.Valid on any input.
func FuzzValidJSON(f *testing.F) {
	for _, s := range []string{`{"model":"a","messages":[{"role":"user","content":"hi"}]}`, `[1,2.5e-3,"\u0041"]`,
		`{"a":}`, `"\ud800"`, `[[[[]]]]`, `-01`, "\t\r\n null \n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := validJSON(b), json.Valid(b); got != want {
			t.Fatalf("validJSON(%q) = %v, json.Valid says %v", b, got, want)
		}
	})
}

// BenchmarkBodyCheck compares the proxy's body check and model rewrite
// with encoding/json.Valid on a typical chat request.
func BenchmarkBodyCheck(b *testing.B) {
	body := []byte(`{"model":"gpt-4o","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hello in one word."}],"max_tokens":16,"temperature":0.2,"stream":false}`)
	dst := make([]byte, 0, 512)
	b.Run("json.Valid", func(b *testing.B) {
		for b.Loop() {
			if !json.Valid(body) {
				b.Fatal("invalid")
			}
		}
	})
	b.Run("validJSON", func(b *testing.B) {
		for b.Loop() {
			if !validJSON(body) {
				b.Fatal("invalid")
			}
		}
	})
	// What the proxy does: the check finds the model's spans, the rewrite
	// splices them.
	b.Run("scanJSON+spliceModel", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var buf [4][2]int
			models, ok := scanJSON(body, buf[:0])
			if !ok {
				b.Fatal("invalid")
			}
			dst, _ = spliceModel(dst[:0], body, []byte(`"upstream-model"`), models)
		}
	})
}
