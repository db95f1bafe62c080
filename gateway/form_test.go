package gateway

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"sync"
	"testing"
)

// formRequest is a multipart body as openai-go writes a transcription.
func formRequest(t testing.TB, fields map[string]string, file []byte) (body []byte, contentType string) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	fw, err := mw.CreateFormFile("file", "speech.wav")
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(file)
	for k, v := range fields {
		mw.WriteField(k, v)
	}
	mw.Close()
	return b.Bytes(), mw.FormDataContentType()
}

// TestForms: audio transcriptions and translations (multipart/form-data)
// are forwarded with the form's model rewritten and everything else —
// the audio above all — byte for byte.
func TestForms(t *testing.T) {
	type seen struct {
		path, model, auth, language string
		file                        []byte
	}
	var mu sync.Mutex
	var last seen
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var s seen
		s.path, s.auth = r.URL.Path, r.Header.Get("Authorization")
		_, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err == nil {
			mr := multipart.NewReader(r.Body, params["boundary"])
			for {
				p, err := mr.NextPart()
				if err != nil {
					break
				}
				v, _ := io.ReadAll(p)
				switch p.FormName() {
				case "model":
					s.model = string(v)
				case "language":
					s.language = string(v)
				case "file":
					s.file = v
				}
			}
		}
		mu.Lock()
		last = s
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"text":"transcribed"}`)
	}))
	t.Cleanup(up.Close)
	f := newFixture(t)
	keys := f.accounts.add(Account{ID: acctID("audio"), Name: "audio", Kind: "OpenAI"})
	f.deps.put(acctID("audio"), &Deployment{Name: "whisper", Upstream: mustURL(t, up.URL), Model: "whisper-large-v3", Credential: "up-key"})
	f.deps.put(acctID("audio"), &Deployment{Name: "asis", Upstream: mustURL(t, up.URL), Credential: "up-key"})
	key := map[string]string{"api-key": keys[0]}
	audio := bytes.Repeat([]byte{0, 1, 2, 0xff, '\r', '\n', '-', '-'}, 4096) // binary, with CRLFs and dashes

	post := func(t *testing.T, url string, body []byte, ct string) (int, string) {
		t.Helper()
		hdr := map[string]string{"Content-Type": ct}
		for k, v := range key {
			hdr[k] = v
		}
		resp := f.do(t, req{url: url, header: hdr, body: string(body)})
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tt := range []struct {
		name, url string
		fields    map[string]string
		path      string
		model     string
	}{
		{"deployment-path", "/ai/audio/openai/deployments/whisper/audio/transcriptions?api-version=2024-10-21",
			map[string]string{"model": "whisper", "language": "de"}, "/v1/audio/transcriptions", "whisper-large-v3"},
		{"deployment-path-without-model-field", "/ai/audio/openai/deployments/whisper/audio/translations?api-version=2024-10-21",
			map[string]string{"language": "de"}, "/v1/audio/translations", "whisper-large-v3"},
		{"v1-model-field", "/ai/audio/openai/v1/audio/transcriptions",
			map[string]string{"model": "whisper", "language": "de"}, "/v1/audio/transcriptions", "whisper-large-v3"},
		{"deployment-without-upstream-model", "/ai/audio/openai/v1/audio/transcriptions",
			map[string]string{"model": "asis", "language": "de"}, "/v1/audio/transcriptions", "asis"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			body, ct := formRequest(t, tt.fields, audio)
			status, out := post(t, tt.url, body, ct)
			mu.Lock()
			got := last
			mu.Unlock()
			if status != 200 || out != `{"text":"transcribed"}` {
				t.Fatalf("status %d: %s", status, out)
			}
			if got.path != tt.path || got.model != tt.model || got.auth != "Bearer up-key" || got.language != "de" || !bytes.Equal(got.file, audio) {
				t.Errorf("upstream saw %s model %q auth %q language %q, file intact %v", got.path, got.model, got.auth, got.language, bytes.Equal(got.file, audio))
			}
		})
	}

	t.Run("audio-above-MaxBodyBytes", func(t *testing.T) {
		// 20 MiB of audio: over the JSON limit (16 MiB), under Azure's 25 MB.
		big := bytes.Repeat(audio, 20<<20/len(audio))
		body, ct := formRequest(t, map[string]string{"model": "whisper"}, big)
		status, out := post(t, "/ai/audio/openai/v1/audio/transcriptions", body, ct)
		mu.Lock()
		got := last
		mu.Unlock()
		if status != 200 || !bytes.Equal(got.file, big) {
			t.Fatalf("status %d (%s), file intact %v", status, out, bytes.Equal(got.file, big))
		}
	})

	good, goodCT := formRequest(t, map[string]string{"model": "whisper"}, audio)
	noModel, noModelCT := formRequest(t, map[string]string{"language": "de"}, audio)
	var many bytes.Buffer
	mw := multipart.NewWriter(&many)
	for range maxFormParts + 1 {
		mw.WriteField("x", "y")
	}
	mw.Close()
	// Parts an upstream's parser could read otherwise than the gateway:
	// the client's model would pass the rewrite.
	raw := func(disposition string) (body []byte, ct string) {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		h := textproto.MIMEHeader{}
		h["Content-Disposition"] = []string{disposition}
		pw, _ := mw.CreatePart(h)
		io.WriteString(pw, "client-model")
		mw.WriteField("model", "whisper")
		mw.Close()
		return b.Bytes(), mw.FormDataContentType()
	}
	twoNames, twoNamesCT := raw(`form-data; name="model"; name="zz"`)
	fileModel, fileModelCT := raw(`form-data; name="model"; filename="m.txt"`)
	for _, tt := range []struct {
		name, url, ct string
		body          []byte
		status        int
		code          string
	}{
		{"json-body", "/ai/audio/openai/v1/audio/transcriptions", "application/json", []byte(`{"model":"whisper"}`), 400, "BadRequest"},
		{"no-boundary", "/ai/audio/openai/v1/audio/transcriptions", "multipart/form-data", good, 400, "BadRequest"},
		{"wrong-boundary", "/ai/audio/openai/v1/audio/transcriptions", "multipart/form-data; boundary=nope", good, 400, "BadRequest"},
		{"truncated", "/ai/audio/openai/v1/audio/transcriptions", goodCT, good[:len(good)/2], 400, "BadRequest"},
		{"too-many-parts", "/ai/audio/openai/v1/audio/transcriptions", mw.FormDataContentType(), many.Bytes(), 400, "BadRequest"},
		{"v1-without-model", "/ai/audio/openai/v1/audio/transcriptions", noModelCT, noModel, 400, "BadRequest"},
		{"part-with-two-names", "/ai/audio/openai/v1/audio/transcriptions", twoNamesCT, twoNames, 400, "BadRequest"},
		{"model-as-a-file", "/ai/audio/openai/v1/audio/transcriptions", fileModelCT, fileModel, 400, "BadRequest"},
		{"unknown-deployment", "/ai/audio/openai/v1/audio/transcriptions", goodCT,
			bytes.Replace(good, []byte("whisper"), []byte("nothere"), 1), 404, "DeploymentNotFound"},
		{"missing-api-version", "/ai/audio/openai/deployments/whisper/audio/transcriptions", goodCT, good, 404, "404"},
		{"oversized", "/ai/audio/openai/v1/audio/transcriptions", goodCT, append(bytes.Clone(good), make([]byte, maxFormBody)...), 413, "RequestEntityTooLarge"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			hdr := map[string]string{"Content-Type": tt.ct, "api-key": keys[0]}
			resp := f.do(t, req{url: tt.url, header: hdr, body: string(tt.body)})
			if resp.StatusCode != tt.status {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, b)
			}
			if code, msg := azureErr(t, resp); code != tt.code || msg == "" {
				t.Errorf("code %q (%s), want %q", code, msg, tt.code)
			}
		})
	}
}

// FuzzFormModel: any body and boundary give a model or an error, never a
// panic, and a body formModel accepts is rewritten to one whose model
// is the new one.
func FuzzFormModel(f *testing.F) {
	body, ct := formRequest(f, map[string]string{"model": "m", "language": "de"}, []byte("RIFF\x00\x01"))
	_, params, _ := mime.ParseMediaType(ct)
	f.Add(body, params["boundary"])
	f.Add([]byte("--b\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nx\r\n--b--\r\n"), "b")
	f.Add([]byte("--b\r\n\r\n--b--"), "b")
	f.Fuzz(func(t *testing.T, body []byte, boundary string) {
		if _, err := formModel(body, boundary); err != nil {
			return
		}
		out, err := setFormModel(body, boundary, "upstream-model")
		if err != nil {
			return // a boundary multipart.Writer refuses
		}
		if got, err := formModel(out, boundary); err != nil || got != "upstream-model" {
			t.Fatalf("rewritten body: model %q, %v", got, err)
		}
	})
}
