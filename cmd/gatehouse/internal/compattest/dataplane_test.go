package compattest

import (
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"testing"
)

// languageDoc is language.mjs' view of one result document.
type languageDoc struct {
	ID              string `json:"id"`
	PrimaryLanguage *struct {
		Name            string  `json:"name"`
		ISO6391Name     string  `json:"iso6391Name"`
		ConfidenceScore float64 `json:"confidenceScore"`
	} `json:"primaryLanguage"`
	Sentiment        string `json:"sentiment"`
	ConfidenceScores *struct {
		Positive, Neutral, Negative float64
	} `json:"confidenceScores"`
	Sentences []struct {
		Text      string          `json:"text"`
		Sentiment string          `json:"sentiment"`
		Offset    int             `json:"offset"`
		Length    int             `json:"length"`
		Opinions  json.RawMessage `json:"opinions"`
	} `json:"sentences"`
	Statistics *struct {
		CharacterCount   int `json:"characterCount"`
		TransactionCount int `json:"transactionCount"`
	} `json:"statistics"`
	Error *struct {
		Code, Message string
	} `json:"error"`
}

// testLanguage: TextAnalysisClient with AzureKeyCredential and with
// DefaultAzureCredential (a principal holding Cognitive Services User)
// detects languages, analyses sentiment, reports per-document errors and
// request errors.
func testLanguage(t *testing.T, e *env) {
	keyVars := map[string]string{"LANGUAGE_ENDPOINT": e.language.endpoint, "LANGUAGE_KEY": e.language.key2}
	tokenVars := e.identityEnv(e.app)
	tokenVars["LANGUAGE_ENDPOINT"] = e.language.endpoint
	hostVars := e.identityEnv(e.app)
	hostVars["LANGUAGE_ENDPOINT"] = e.hostEndpoint(e.language, "cognitiveservices")
	for _, tt := range []struct {
		name, mode string
		vars       map[string]string
	}{
		{"azure-key-credential", "key", keyVars},
		{"token-credential", "token", tokenVars},
		{"token-credential-host-endpoint", "token", hostVars},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := e.node(t, tt.vars, "language.mjs", tt.mode)
			var docs []languageDoc
			s.value(t, "language-detection", &docs)
			if len(docs) != 3 {
				t.Fatalf("detection: %+v", docs)
			}
			for i, want := range []string{"en", "fr", "es"} {
				d := docs[i]
				if d.ID != fmt.Sprint(i) || d.PrimaryLanguage == nil || d.PrimaryLanguage.ISO6391Name != want || d.PrimaryLanguage.ConfidenceScore <= 0 {
					t.Errorf("detection %d: %+v", i, d)
				}
			}
			s.value(t, "language-detection-hint", &docs)
			if len(docs) != 1 || docs[0].ID != "a" || docs[0].PrimaryLanguage == nil || docs[0].PrimaryLanguage.ISO6391Name != "de" ||
				docs[0].Statistics == nil || docs[0].Statistics.CharacterCount != len("Guten Morgen, wie geht es dir heute?") ||
				docs[0].Statistics.TransactionCount != 1 {
				t.Errorf("detection with hint and statistics: %+v", docs)
			}
			s.value(t, "sentiment", &docs)
			if len(docs) != 3 {
				t.Fatalf("sentiment: %+v", docs)
			}
			for i, want := range []string{"positive", "negative", "neutral"} {
				d := docs[i]
				if d.Sentiment != want || d.ConfidenceScores == nil || len(d.Sentences) == 0 {
					t.Errorf("sentiment %d: %+v", i, d)
				}
			}
			// Sentences keep their trailing whitespace, as Azure's do.
			if first := docs[0].Sentences[0]; strings.TrimSpace(first.Text) != "I love this product." || first.Offset != 0 || first.Length != len(first.Text) {
				t.Errorf("first sentence: %+v", first)
			}
			s.value(t, "sentiment-opinion-mining", &docs)
			if len(docs) != 1 || docs[0].Sentiment == "" || len(docs[0].Sentences) != 1 {
				t.Fatalf("opinion mining: %+v", docs)
			}
			// The SDK builds opinions by following the targets' relation
			// references to the assessments.
			var opinions []struct {
				Target      struct{ Text, Sentiment string }
				Assessments []struct {
					Text, Sentiment string
					IsNegated       bool
				}
			}
			if err := json.Unmarshal(docs[0].Sentences[0].Opinions, &opinions); err != nil {
				t.Fatalf("opinions: %v: %s", err, docs[0].Sentences[0].Opinions)
			}
			if len(opinions) != 2 || opinions[0].Target.Text != "food" || opinions[0].Target.Sentiment != "positive" ||
				len(opinions[0].Assessments) != 1 || opinions[0].Assessments[0].Text != "great" ||
				opinions[1].Target.Text != "service" || len(opinions[1].Assessments) != 1 || opinions[1].Assessments[0].Text != "awful" ||
				opinions[1].Assessments[0].Sentiment != "negative" {
				t.Errorf("opinions: %s", docs[0].Sentences[0].Opinions)
			}
			s.value(t, "sentiment-document-errors", &docs)
			if len(docs) != 2 || docs[0].ID != "1" || docs[0].Error == nil || docs[0].Error.Code != "InvalidDocument" ||
				docs[1].ID != "2" || docs[1].Error != nil || docs[1].Sentiment != "positive" {
				t.Errorf("document errors: %+v", docs)
			}
			if err := s.err(t, "bad-request"); err.StatusCode != 400 || err.Code != "InvalidDocumentBatch" {
				t.Errorf("empty batch: %s", err)
			}
		})
	}
	t.Run("wrong-key", func(t *testing.T) {
		t.Parallel()
		s := e.node(t, map[string]string{"LANGUAGE_ENDPOINT": e.language.endpoint, "LANGUAGE_KEY": strings.Repeat("0", 64)}, "language.mjs", "key")
		if err := s.err(t, "language-detection"); err.StatusCode != 401 || err.Code != "401" {
			t.Errorf("wrong key: %s", err)
		}
	})
	t.Run("identity-without-role", func(t *testing.T) {
		t.Parallel()
		vars := e.identityEnv(e.certApp) // no role on the account
		delete(vars, "AZURE_CLIENT_SECRET")
		vars["AZURE_CLIENT_CERTIFICATE_PATH"] = e.certFile
		vars["LANGUAGE_ENDPOINT"] = e.language.endpoint
		s := e.node(t, vars, "language.mjs", "token")
		if err := s.err(t, "language-detection"); err.StatusCode != 401 || err.Code != "PermissionDenied" {
			t.Errorf("identity without a data role: %s", err)
		}
	})
}

// hostEndpoint is a's host-form endpoint, https://{account}.{kind}.H/ (the
// preload resolves it), as an account created with --endpoint-form host
// advertises it.
func (e *env) hostEndpoint(a *account, kind string) string {
	return "https://" + a.name + "." + kind + "." + e.Host + "/"
}

// chatResult is openai.mjs' view of a completion.
type chatResult struct {
	ID, Object, Model, Content, FinishReason string
	Chunks                                   int
	Status                                   int
	Usage                                    *struct {
		TotalTokens int `json:"total_tokens"`
	}
}

// testOpenAI: AzureOpenAI with apiKey (from AZURE_OPENAI_API_KEY) and
// with azureADTokenProvider (getBearerTokenProvider over
// DefaultAzureCredential) completes chats through the gateway to the
// upstream, streaming and not, by body model and by bound deployment,
// transcribes (multipart/form-data), speaks and draws, and creates,
// reads, lists, deletes and streams responses (the Responses API).
func testOpenAI(t *testing.T, e *env) {
	common := map[string]string{"AZURE_OPENAI_ENDPOINT": e.openai.endpoint, "OPENAI_API_VERSION": "2024-10-21",
		"AZURE_OPENAI_DEPLOYMENT": e.deployment}
	keyVars := map[string]string{"AZURE_OPENAI_API_KEY": e.openai.key1}
	tokenVars := e.identityEnv(e.app)
	hostVars := e.identityEnv(e.app)
	hostVars["AZURE_OPENAI_ENDPOINT"] = e.hostEndpoint(e.openai, "openai")
	want := "echo from " + upstreamModel + " at /v1/chat/completions: Say hello"
	for _, tt := range []struct {
		name, mode string
		vars       map[string]string
	}{
		{"api-key", "key", keyVars},
		{"azure-ad-token-provider", "token", tokenVars},
		{"azure-ad-token-provider-host-endpoint", "token", hostVars},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			vars := map[string]string{}
			for k, v := range common {
				vars[k] = v
			}
			for k, v := range tt.vars {
				vars[k] = v
			}
			s := e.node(t, vars, "openai.mjs", tt.mode)
			var c chatResult
			s.value(t, "chat", &c)
			if c.Content != want || c.FinishReason != "stop" || c.Object != "chat.completion" || c.Usage == nil || c.Usage.TotalTokens != 2 {
				t.Errorf("chat: %+v", c)
			}
			s.value(t, "chat-bound-deployment", &c)
			if c.Content != want {
				t.Errorf("bound deployment: %+v", c)
			}
			s.value(t, "chat-with-response", &c)
			if c.Status != 200 || c.Content != want {
				t.Errorf("with response: %+v", c)
			}
			s.value(t, "chat-stream", &c)
			if c.Content != want || c.Chunks < 2 || c.FinishReason != "stop" {
				t.Errorf("stream: %+v", c)
			}
			s.value(t, "chat-stream-helper", &c)
			if c.Content != want {
				t.Errorf("stream helper: %+v", c)
			}
			if err := s.err(t, "unknown-deployment"); err.Status != 404 || err.Code != "DeploymentNotFound" {
				t.Errorf("unknown deployment: %s", err)
			}
			var models struct {
				IDs       []string
				Retrieved string
			}
			s.value(t, "models", &models)
			if strings.Join(models.IDs, ",") != "gpt-4o-mini-2024-07-18,gpt-4o-mini-2024-05-13,text-embedding-3-small" ||
				models.Retrieved != "gpt-4o-mini-2024-07-18" {
				t.Errorf("models: %+v", models)
			}
			// Media, each at the deployment's path.
			var m chatResult
			s.value(t, "transcription", &m)
			if want := "echo from " + upstreamModel + " at /v1/audio/transcriptions: speech.wav, 100000 bytes"; m.Content != want {
				t.Errorf("transcription: %+v", m)
			}
			s.value(t, "speech", &m)
			if m.Content != "ID3 echo from "+upstreamModel+" at /v1/audio/speech: guten tag" || m.Object != "audio/mpeg" {
				t.Errorf("speech: %+v", m)
			}
			s.value(t, "image", &m)
			if m.Content != "echo from "+upstreamModel+" at /v1/images/generations: a gate" {
				t.Errorf("image: %+v", m)
			}
			// The Responses API.
			wantResp := "echo from " + upstreamModel + " at /v1/responses: Say hello"
			var r chatResult
			s.value(t, "response", &r)
			if r.ID == "" || r.Object != "response" || r.FinishReason != "completed" || r.Content != wantResp {
				t.Errorf("response: %+v", r)
			}
			var got chatResult
			s.value(t, "response-get", &got)
			if got.ID != r.ID || got.Content != wantResp {
				t.Errorf("response get: %+v", got)
			}
			s.value(t, "response-input-items", &got)
			if got.Chunks != 1 {
				t.Errorf("response input items: %+v", got)
			}
			s.value(t, "response-delete", &got)
			if err := s.err(t, "response-get-deleted"); err.Status != 404 {
				t.Errorf("response get after delete: %s", err)
			}
			s.value(t, "response-stream", &got)
			if got.Content != wantResp || got.Chunks < 2 || got.FinishReason != "completed" {
				t.Errorf("response stream: %+v", got)
			}
		})
	}
	t.Run("wrong-key", func(t *testing.T) {
		t.Parallel()
		vars := map[string]string{"AZURE_OPENAI_API_KEY": strings.Repeat("0", 64)}
		for k, v := range common {
			vars[k] = v
		}
		s := e.node(t, vars, "openai.mjs", "key")
		if err := s.err(t, "chat"); err.Status != 401 || err.Code != "401" {
			t.Errorf("wrong key: %s", err)
		}
	})
	t.Cleanup(func() {
		if e.up.SawSecret(e.openai.key1) {
			t.Error("the upstream saw the client's key")
		}
	})
}

const (
	upstreamKey   = "upstream-own-credential-5d2a"
	upstreamModel = "local-llama"
)

// testOpenAIV1: openai's plain OpenAI client (no Azure class) on the v1
// API with only a base URL and an API key — the account key, or an
// identity token in its place, or a token provider asking for
// https://ai.azure.com/.default as Azure's v1 documentation does — lists
// the deployments as models, chats, and creates, reads and streams
// responses.
func testOpenAIV1(t *testing.T, e *env) {
	token := e.Token(t, e.SecretCredential(t, e.app.clientID, e.app.secret), "https://cognitiveservices.azure.com/.default")
	t.Cleanup(func() { e.AssertNotLogged(t, token) })
	credVars := e.identityEnv(e.app)
	for _, tt := range []struct {
		name, key, mode string
		vars            map[string]string
	}{
		{"key", e.openai.key2, "", nil},
		{"identity-token", token, "", nil},
		{"token-provider-ai-scope", "", "credential", credVars},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			vars := map[string]string{"OPENAI_BASE_URL": e.openai.endpoint + "openai/v1/", "AZURE_OPENAI_DEPLOYMENT": e.deployment}
			if tt.key != "" {
				vars["OPENAI_API_KEY"] = tt.key
			}
			maps.Copy(vars, tt.vars)
			var args []string
			if tt.mode != "" {
				args = append(args, tt.mode)
			}
			s := e.node(t, vars, "openai-v1.mjs", args...)
			var models struct{ IDs []string }
			s.value(t, "models", &models)
			if len(models.IDs) == 0 || models.IDs[0] != e.deployment {
				t.Errorf("models: %+v", models)
			}
			var model struct{ ID, Object string }
			s.value(t, "model", &model)
			if model.ID != e.deployment || model.Object != "model" {
				t.Errorf("model: %+v", model)
			}
			var c chatResult
			s.value(t, "chat", &c)
			if c.Content != "echo from "+upstreamModel+" at /v1/chat/completions: Say hello" {
				t.Errorf("chat: %+v", c)
			}
			want := "echo from " + upstreamModel + " at /v1/responses: Say hello"
			var r chatResult
			s.value(t, "response", &r)
			var got chatResult
			s.value(t, "response-get", &got)
			if r.Content != want || got.ID != r.ID || got.Content != want {
				t.Errorf("response %+v, get %+v", r, got)
			}
			var st struct{ Content, Completed string }
			s.value(t, "response-stream", &st)
			if st.Content != want || st.Completed != "completed" {
				t.Errorf("stream: %+v", st)
			}
			if err := s.err(t, "embedding-unknown-deployment"); err.Status != 404 || err.Code != "DeploymentNotFound" {
				t.Errorf("unknown deployment: %s", err)
			}
		})
	}
}

// testOpenAIRealtime: openai's Realtime API clients — OpenAIRealtimeWS.azure
// with a key header and with a token provider, the browser class
// OpenAIRealtimeWebSocket.azure with the key in the URL's query, and
// OpenAIRealtimeWS on the v1 API with the key as a bearer — hold a
// conversation through the gateway with the upstream's Realtime API, and
// an unknown deployment is refused at the handshake.
func testOpenAIRealtime(t *testing.T, e *env) {
	common := map[string]string{"AZURE_OPENAI_ENDPOINT": e.openai.endpoint, "OPENAI_API_VERSION": "2025-04-01-preview",
		"AZURE_OPENAI_DEPLOYMENT": e.deployment, "AZURE_OPENAI_API_KEY": e.openai.key1}
	for _, tt := range []struct {
		mode, path string
		vars       map[string]string
	}{
		{"key", "/openai/realtime?api-version,deployment", nil},
		{"token", "/openai/realtime?api-version,deployment", e.identityEnv(e.app)},
		// Node's own WebSocket (undici's, a browser's API; behind a flag
		// before Node 22).
		{"browser", "/openai/realtime?api-key,api-version,deployment", map[string]string{"NODE_OPTIONS": "--experimental-websocket"}},
		{"v1", "/openai/v1/realtime?model", nil},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			t.Parallel()
			vars := maps.Clone(common)
			if tt.mode == "token" {
				delete(vars, "AZURE_OPENAI_API_KEY")
			}
			maps.Copy(vars, tt.vars)
			s := e.node(t, vars, "realtime.mjs", tt.mode)
			var got struct {
				Model, URL, Text, Status, Websocket string
				Usage                               struct {
					InputTokens  int `json:"input_tokens"`
					OutputTokens int `json:"output_tokens"`
				}
			}
			s.value(t, "conversation", &got)
			want := "echo from " + upstreamModel + " at /v1/realtime: hello over " + tt.mode
			if got.Model != upstreamModel || got.Text != want || got.Status != "completed" || got.Usage.InputTokens != 7 ||
				!strings.HasSuffix(got.URL, tt.path) || tt.mode == "browser" && got.Websocket != "node" {
				t.Errorf("conversation: %+v", got)
			}
			var refused struct{ Refused string }
			s.value(t, "wrong-deployment", &refused)
			if !strings.Contains(refused.Refused, "404") {
				t.Errorf("unknown deployment: %+v", refused)
			}
		})
	}
	t.Cleanup(func() {
		if e.up.SawSecret(e.openai.key1) {
			t.Error("the upstream saw the client's key")
		}
	})
}
