package gatewaytest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/gatehouse/gatehouse/authz"
	"github.com/gatehouse/gatehouse/credential"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/azure"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
)

const openAIVersion = "2024-10-21"

// openAIClient is an openai-go client for endpoint, exactly as an app
// configures it, with the node's TLS trust and no retries.
func (e *env) openAIClient(endpoint string, auth option.RequestOption) openai.Client {
	return openai.NewClient(azure.WithEndpoint(endpoint, openAIVersion), auth,
		option.WithHTTPClient(&http.Client{Transport: e.Transport}), option.WithMaxRetries(0))
}

func chat(t *testing.T, c openai.Client, deployment, msg string) string {
	t.Helper()
	resp, err := c.Chat.Completions.New(t.Context(), openai.ChatCompletionNewParams{
		Model: deployment, Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(msg)}})
	if err != nil {
		t.Fatalf("chat completion: %v", err)
	}
	if len(resp.Choices) != 1 {
		t.Fatalf("choices %v", resp.Choices)
	}
	return resp.Choices[0].Message.Content
}

func testOpenAIKey(t *testing.T, e *env) {
	a := e.createAccount(t, "oai-key", "OpenAI", nil)
	e.deploy(t, a, "gpt-chat", "upstream-llama")
	hostForm := "https://" + a.name + ".openai." + e.Host + "/"
	for _, tt := range []struct{ name, endpoint, key string }{
		{"path-form-key1", a.endpoint, a.key1},
		{"host-form-key2", hostForm, a.key2},
		{"cognitiveservices-host", "https://" + a.name + ".cognitiveservices." + e.Host, a.key1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := chat(t, e.openAIClient(tt.endpoint, azure.WithAPIKey(tt.key)), "gpt-chat", "hello "+tt.name)
			if want := "echo from upstream-llama at /v1/chat/completions: hello " + tt.name; got != want {
				t.Errorf("reply %q, want %q", got, want)
			}
		})
	}
	t.Run("chunked-upstream-reply", func(t *testing.T) {
		// A short chunked answer is held back and its head written after
		// the handler returns (server/h1): the upstream's fields must
		// still be whole then.
		r := e.do(t, call{url: a.endpoint + "openai/deployments/gpt-chat/chat/completions?api-version=" + openAIVersion,
			body: `{"messages":[{"role":"user","content":"chunked reply"}]}`, header: keyHeader(a.key1)})
		if r.status != http.StatusOK || r.header.Get("X-Upstream-Reply") != "chunked" || r.header.Get("Content-Type") != "application/json" ||
			!strings.Contains(string(r.body), "echo from upstream-llama at /v1/chat/completions: chunked reply") {
			t.Errorf("status %d, header %v, body %.200s", r.status, r.header, r.body)
		}
	})
	if e.up.SawSecret(a.key1) || e.up.SawSecret(a.key2) {
		t.Error("the upstream received a client key")
	}
	e.AssertNotLogged(t, a.key1, a.key2, upstreamKey)
}

func testOpenAIIdentity(t *testing.T, e *env) {
	a := e.createAccount(t, "oai-identity", "AIServices", nil)
	e.deploy(t, a, "chat", "m1")
	_, cred := e.principal(t, "oai-user", a, authz.RoleCognitiveServicesOpenAIUser)
	if got := chat(t, e.openAIClient(a.endpoint, azure.WithTokenCredential(cred)), "chat", "hi"); !strings.HasPrefix(got, "echo from m1") {
		t.Errorf("reply %q", got)
	}
	// Azure's documentation for the v1 API and Foundry resources asks for
	// tokens with scope https://ai.azure.com/.default: the same principal,
	// another audience.
	aiScope := azure.WithTokenCredential(cred, azure.WithTokenCredentialScopes([]string{"https://ai.azure.com/.default"}))
	if got := chat(t, e.openAIClient(a.endpoint, aiScope), "chat", "ai scope"); !strings.HasPrefix(got, "echo from m1") {
		t.Errorf("reply with an https://ai.azure.com token: %q", got)
	}
	t.Run("without-role", func(t *testing.T) {
		_, noRole := e.principal(t, "oai-norole", a, "")
		c := e.openAIClient(a.endpoint, azure.WithTokenCredential(noRole))
		_, err := c.Chat.Completions.New(t.Context(),
			openai.ChatCompletionNewParams{Model: "chat", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("x")}})
		var apiErr *openai.Error
		if !asError(err, &apiErr) || apiErr.StatusCode != 401 || apiErr.Code != "PermissionDenied" ||
			!strings.Contains(apiErr.Message, "OpenAI/deployments/chat/completions/action") {
			t.Errorf("error %v, want 401 PermissionDenied naming the data action", err)
		}
	})
}

func testOpenAISTSCredential(t *testing.T, e *env) {
	a := e.createAccount(t, "oai-sts", "OpenAI", nil)
	e.deploy(t, a, "chat", "m2")
	cred, err := credential.NewKeyCredential(a.endpoint, a.key2, &credential.Options{
		ClientOptions: azcore.ClientOptions{Transport: e.Client}})
	if err != nil {
		t.Fatal(err)
	}
	c := e.openAIClient(a.endpoint, azure.WithTokenCredential(cred))
	for i := range 3 {
		if got := chat(t, c, "chat", "sts"); !strings.HasPrefix(got, "echo from m2") {
			t.Fatalf("call %d: reply %q", i, got)
		}
	}
	if e.up.SawSecret(a.key2) {
		t.Error("the upstream received the client's key")
	}
}

func testOpenAIStreaming(t *testing.T, e *env) {
	a := e.createAccount(t, "oai-stream", "OpenAI", nil)
	e.deploy(t, a, "chat", "streamer")
	c := e.openAIClient(a.endpoint, azure.WithAPIKey(a.key1))
	stream := c.Chat.Completions.NewStreaming(t.Context(), openai.ChatCompletionNewParams{
		Model: "chat", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("one two three")}})
	var acc openai.ChatCompletionAccumulator
	chunks := 0
	for stream.Next() {
		acc.AddChunk(stream.Current())
		chunks++
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	want := "echo from streamer at /v1/chat/completions: one two three"
	if chunks < 5 || len(acc.Choices) != 1 || acc.Choices[0].Message.Content != want {
		t.Errorf("%d chunks, accumulated %+v", chunks, acc.Choices)
	}
}

// testOpenAIV1: Azure OpenAI's v1 API (…/openai/v1/, no api-version, the
// deployment in "model") driven by openai-go as a plain OpenAI client, the
// way Azure documents it: base URL …/openai/v1/ and the account key as the
// API key, which the client sends as "Authorization: Bearer <key>"; an
// identity token works the same way, and streaming passes through.
func testOpenAIV1(t *testing.T, e *env) {
	a := e.createAccount(t, "oai-v1", "OpenAI", nil)
	e.deploy(t, a, "gpt-v1", "upstream-v1")
	_, cred := e.principal(t, "oai-v1-user", a, authz.RoleCognitiveServicesOpenAIUser)
	identity := e.Token(t, cred, "https://cognitiveservices.azure.com/.default")
	plain := func(endpoint, apiKey string) openai.Client {
		return openai.NewClient(option.WithBaseURL(endpoint+"openai/v1/"), option.WithAPIKey(apiKey),
			option.WithHTTPClient(&http.Client{Transport: e.Transport}), option.WithMaxRetries(0))
	}
	hostForm := "https://" + a.name + ".openai." + e.Host + "/"
	for _, tt := range []struct{ name, endpoint, key string }{
		{"key-as-bearer", a.endpoint, a.key1},
		{"host-form-key2", hostForm, a.key2},
		{"identity-token", a.endpoint, identity},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := chat(t, plain(tt.endpoint, tt.key), "gpt-v1", "v1 "+tt.name)
			if want := "echo from upstream-v1 at /v1/chat/completions: v1 " + tt.name; got != want {
				t.Errorf("reply %q, want %q", got, want)
			}
		})
	}
	t.Run("models", func(t *testing.T) {
		// GET …/openai/v1/models lists the deployments: what "model" may name.
		e.deploy(t, a, "embed-v1", "upstream-embed")
		for _, key := range []string{a.key1, identity} {
			c := plain(a.endpoint, key)
			page, err := c.Models.List(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, m := range page.Data {
				ids = append(ids, m.ID)
			}
			if strings.Join(ids, ",") != "embed-v1,gpt-v1" {
				t.Fatalf("models %v", ids)
			}
			// One model: a deployment, or 404.
			if m, err := c.Models.Get(t.Context(), "gpt-v1"); err != nil || m.ID != "gpt-v1" || m.Object != "model" {
				t.Fatalf("models.get: %+v %v", m, err)
			}
			var apiErr *openai.Error
			if _, err := c.Models.Get(t.Context(), "no-such-deployment"); !asError(err, &apiErr) || apiErr.StatusCode != 404 || apiErr.Code != "DeploymentNotFound" {
				t.Fatalf("models.get of an unknown deployment: %v", err)
			}
		}
	})
	t.Run("streaming", func(t *testing.T) {
		c := plain(a.endpoint, a.key1)
		stream := c.Chat.Completions.NewStreaming(t.Context(), openai.ChatCompletionNewParams{
			Model: "gpt-v1", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("a b c")}})
		var acc openai.ChatCompletionAccumulator
		for stream.Next() {
			acc.AddChunk(stream.Current())
		}
		if err := stream.Err(); err != nil || len(acc.Choices) != 1 || acc.Choices[0].Message.Content != "echo from upstream-v1 at /v1/chat/completions: a b c" {
			t.Fatalf("stream: %v %+v", err, acc.Choices)
		}
	})
	t.Run("refusals", func(t *testing.T) {
		for _, tt := range []struct {
			name, key, model string
			status           int
			code             string
		}{
			{"wrong-key", strings.Repeat("0", 64), "gpt-v1", 401, "401"},
			{"unknown-deployment", a.key1, "no-such-deployment", 404, "DeploymentNotFound"},
			{"tampered-token", identity[:len(identity)-4] + "AAAA", "gpt-v1", 401, "401"},
		} {
			c := plain(a.endpoint, tt.key)
			_, err := c.Chat.Completions.New(t.Context(), openai.ChatCompletionNewParams{
				Model: tt.model, Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("x")}})
			var apiErr *openai.Error
			if !asError(err, &apiErr) || apiErr.StatusCode != tt.status || apiErr.Code != tt.code {
				t.Errorf("%s: %v, want %d %s", tt.name, err, tt.status, tt.code)
			}
		}
		// No "model": the v1 API cannot tell the deployment.
		req, _ := http.NewRequestWithContext(t.Context(), "POST", a.endpoint+"openai/v1/chat/completions",
			strings.NewReader(`{"messages":[{"role":"user","content":"x"}]}`))
		req.Header.Set("Authorization", "Bearer "+a.key1)
		resp, err := e.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("no model: %d", resp.StatusCode)
		}
	})
	e.assertCredentialsKept(t, a.key1, a.key2, identity)
}

// testOpenAIResponses: the Responses API through openai-go, as Azure
// documents it both ways — the Azure client (azure.WithEndpoint: POST
// …/openai/responses?api-version=…, the deployment in "model") with a
// key, and a plain OpenAI client on the v1 API (base URL …/openai/v1/)
// with an identity token that holds Cognitive Services OpenAI User, and
// scoped to the deployment as openai-python's azure_deployment does —
// creating, streaming, reading back, listing input items, cancelling and
// deleting a response.
func testOpenAIResponses(t *testing.T, e *env) {
	a := e.createAccount(t, "oai-responses", "OpenAI", nil)
	e.deploy(t, a, "gpt-resp", "upstream-resp")
	_, cred := e.principal(t, "oai-resp-user", a, authz.RoleCognitiveServicesOpenAIUser)
	identity := e.Token(t, cred, "https://cognitiveservices.azure.com/.default")
	dated := openai.NewClient(azure.WithEndpoint(a.endpoint, "2025-04-01-preview"), azure.WithAPIKey(a.key1),
		option.WithHTTPClient(&http.Client{Transport: e.Transport}), option.WithMaxRetries(0))
	v1 := openai.NewClient(option.WithBaseURL(a.endpoint+"openai/v1/"), option.WithAPIKey(identity),
		option.WithHTTPClient(&http.Client{Transport: e.Transport}), option.WithMaxRetries(0))
	// The shape of openai-python's AzureOpenAI(azure_deployment=…): the
	// base URL is the deployment's, the api-version a query parameter.
	scoped := openai.NewClient(option.WithBaseURL(a.endpoint+"openai/deployments/gpt-resp/"),
		option.WithQuery("api-version", "2025-04-01-preview"), option.WithHeader("api-key", a.key2), option.WithAPIKey(""),
		option.WithHTTPClient(&http.Client{Transport: e.Transport}), option.WithMaxRetries(0))
	input := func(s string) responses.ResponseNewParamsInputUnion {
		return responses.ResponseNewParamsInputUnion{OfString: openai.String(s)}
	}

	for _, tt := range []struct {
		name string
		c    openai.Client
	}{{"azure-client-key", dated}, {"v1-identity", v1}, {"deployment-scoped", scoped}} {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.c
			resp, err := c.Responses.New(t.Context(), responses.ResponseNewParams{Model: "gpt-resp", Input: input("hello " + tt.name)})
			if err != nil {
				t.Fatal(err)
			}
			want := "echo from upstream-resp at /v1/responses: hello " + tt.name
			if resp.OutputText() != want || resp.ID == "" {
				t.Fatalf("response %q (%s), want %q", resp.OutputText(), resp.ID, want)
			}
			got, err := c.Responses.Get(t.Context(), resp.ID, responses.ResponseGetParams{})
			if err != nil || got.ID != resp.ID || got.OutputText() != want {
				t.Fatalf("get: %v %+v", err, got)
			}
			items, err := c.Responses.InputItems.List(t.Context(), resp.ID, responses.InputItemListParams{})
			if err != nil || len(items.Data) != 1 {
				t.Fatalf("input items: %v %+v", err, items)
			}
			cancelled, err := c.Responses.Cancel(t.Context(), resp.ID)
			if err != nil || cancelled.Status != "cancelled" {
				t.Fatalf("cancel: %v %+v", err, cancelled)
			}
			if err := c.Responses.Delete(t.Context(), resp.ID); err != nil {
				t.Fatalf("delete: %v", err)
			}
			_, err = c.Responses.Get(t.Context(), resp.ID, responses.ResponseGetParams{})
			var apiErr *openai.Error
			if !asError(err, &apiErr) || apiErr.StatusCode != 404 {
				t.Fatalf("get after delete: %v", err)
			}

			stream := c.Responses.NewStreaming(t.Context(), responses.ResponseNewParams{Model: "gpt-resp", Input: input("one two three")})
			var text strings.Builder
			completed := false
			for stream.Next() {
				switch ev := stream.Current(); ev.Type {
				case "response.output_text.delta":
					text.WriteString(ev.Delta)
				case "response.completed":
					completed = ev.Response.OutputText() == text.String()
				}
			}
			if err := stream.Err(); err != nil || !completed || text.String() != "echo from upstream-resp at /v1/responses: one two three" {
				t.Fatalf("stream: %v, completed %v, text %q", err, completed, text.String())
			}
		})
	}
	t.Run("without-role", func(t *testing.T) {
		_, noRole := e.principal(t, "oai-resp-norole", a, "")
		c := openai.NewClient(option.WithBaseURL(a.endpoint+"openai/v1/"),
			option.WithAPIKey(e.Token(t, noRole, "https://cognitiveservices.azure.com/.default")),
			option.WithHTTPClient(&http.Client{Transport: e.Transport}), option.WithMaxRetries(0))
		_, err := c.Responses.New(t.Context(), responses.ResponseNewParams{Model: "gpt-resp", Input: input("x")})
		var apiErr *openai.Error
		if !asError(err, &apiErr) || apiErr.StatusCode != 401 || apiErr.Code != "PermissionDenied" ||
			!strings.Contains(apiErr.Message, "OpenAI/responses/write") {
			t.Errorf("error %v, want 401 PermissionDenied naming responses/write", err)
		}
	})
	e.assertCredentialsKept(t, a.key1, a.key2, identity)
}

// testOpenAIMedia: image generation, speech and transcription (a
// multipart/form-data body with the audio) through openai-go, on the
// Azure client (the deployment in the path, as azure.WithEndpoint routes
// them) with a key and on the v1 API (the deployment in "model") with an
// identity token; the upstream gets its own model and the audio intact.
func testOpenAIMedia(t *testing.T, e *env) {
	a := e.createAccount(t, "oai-media", "OpenAI", nil)
	e.deploy(t, a, "whisper", "whisper-large-v3")
	e.deploy(t, a, "tts", "kokoro")
	e.deploy(t, a, "dalle", "flux")
	_, cred := e.principal(t, "oai-media-user", a, authz.RoleCognitiveServicesOpenAIUser)
	identity := e.Token(t, cred, "https://cognitiveservices.azure.com/.default")
	audio := bytes.Repeat([]byte("RIFF\x00\x01\r\n--"), 20000) // 160 kB, CRLFs and dashes included
	for _, tt := range []struct {
		name   string
		c      openai.Client
		prefix string // where the upstream is asked
	}{
		{"azure-client-key", openai.NewClient(azure.WithEndpoint(a.endpoint, openAIVersion), azure.WithAPIKey(a.key1),
			option.WithHTTPClient(&http.Client{Transport: e.Transport}), option.WithMaxRetries(0)), "/v1/"},
		{"v1-identity", openai.NewClient(option.WithBaseURL(a.endpoint+"openai/v1/"), option.WithAPIKey(identity),
			option.WithHTTPClient(&http.Client{Transport: e.Transport}), option.WithMaxRetries(0)), "/v1/"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := tt.c.Audio.Transcriptions.New(t.Context(), openai.AudioTranscriptionNewParams{
				Model: "whisper", File: openai.File(bytes.NewReader(audio), "speech.wav", "audio/wav"), Language: openai.String("de")})
			if want := fmt.Sprintf("echo from whisper-large-v3 at /v1/audio/transcriptions: speech.wav, %d bytes", len(audio)); err != nil || tr.Text != want {
				t.Errorf("transcription: %v %q, want %q", err, tr.Text, want)
			}
			sp, err := tt.c.Audio.Speech.New(t.Context(), openai.AudioSpeechNewParams{Model: "tts", Input: "guten tag",
				Voice: openai.AudioSpeechNewParamsVoiceUnion{OfString: openai.String("alloy")}})
			if err != nil {
				t.Fatalf("speech: %v", err)
			}
			b, _ := io.ReadAll(sp.Body)
			sp.Body.Close()
			if sp.Header.Get("Content-Type") != "audio/mpeg" || string(b) != "ID3 echo from kokoro at /v1/audio/speech: guten tag" {
				t.Errorf("speech: %s %q", sp.Header.Get("Content-Type"), b)
			}
			img, err := tt.c.Images.Generate(t.Context(), openai.ImageGenerateParams{Model: "dalle", Prompt: "a gate"})
			if err != nil || len(img.Data) != 1 || img.Data[0].RevisedPrompt != "echo from flux at /v1/images/generations: a gate" {
				t.Errorf("image: %v %+v", err, img)
			}
		})
	}
	e.assertCredentialsKept(t, a.key1, a.key2, identity)
}

// assertCredentialsKept: none of the client's credentials reached the
// upstream or the node's log.
func (e *env) assertCredentialsKept(t *testing.T, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if e.up.SawSecret(s) {
			t.Error("the upstream received a client credential")
			break
		}
	}
	e.AssertNotLogged(t, secrets...)
}
