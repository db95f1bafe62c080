package gateway

import (
	"encoding/json"
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
	for _, s := range []string{`{"model":"a"}`, `{}`, `{"a":[{"model":1}],"model":null,"model":"z"}`, `{"\u006dodel":1}`, `[1]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		if !json.Valid([]byte(in)) {
			return
		}
		out, err := setModel(nil, []byte(in), []byte(`"up"`))
		var orig map[string]any
		if json.Unmarshal([]byte(in), &orig) != nil {
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
