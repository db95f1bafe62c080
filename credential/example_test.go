package credential_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/gatehouse/gatehouse/credential"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/azure"
	"github.com/openai/openai-go/v3/option"
)

// An app that holds a Gatehouse key but should not send it on every
// request trades it for STS tokens with KeyCredential and hands that to
// openai-go (or any Azure SDK client). The endpoint is the account's
// properties.endpoint; in this example a stand-in server plays Gatehouse.
func ExampleNewKeyCredential() {
	gatehouse := standIn()
	defer gatehouse.Close()
	endpoint := gatehouse.URL + "/ai/my-openai/" // properties.endpoint of the account
	key := "the-account-key"                     // from `gatehouse cognitiveservices account keys list`

	cred, err := credential.NewKeyCredential(endpoint, key, &credential.Options{
		// Only for the stand-in's self-signed certificate; a real node's CA
		// is trusted through SSL_CERT_FILE.
		ClientOptions: azcore.ClientOptions{Transport: gatehouse.Client()},
	})
	if err != nil {
		log.Fatal(err)
	}
	client := openai.NewClient(
		azure.WithEndpoint(endpoint, "2024-10-21"),
		azure.WithTokenCredential(cred),
		option.WithHTTPClient(gatehouse.Client()),
	)
	resp, err := client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
		Model:    "gpt-4o", // the deployment name
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Hello")},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.Choices[0].Message.Content)
	// Output: Hello back, holder of an STS token
}

// standIn answers the STS and a chat completion the way a Gatehouse node
// does (without checking signatures: it is a stand-in).
func standIn() *httptest.Server {
	return httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/ai/my-openai/sts/v1.0/issueToken" && r.Header.Get("Ocp-Apim-Subscription-Key") == "the-account-key":
			now := time.Now().Unix()
			claims := fmt.Sprintf(`{"aud":"urn:ms.cognitiveservices","iat":%d,"exp":%d}`, now, now+600)
			fmt.Fprint(w, "eyJhbGciOiJFUzI1NiJ9."+base64.RawURLEncoding.EncodeToString([]byte(claims))+".c2lnbmF0dXJl")
		case strings.HasSuffix(r.URL.Path, "/chat/completions") && strings.HasPrefix(r.Header.Get("Authorization"), "Bearer eyJ"):
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"id":"1","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,"finish_reason":"stop",`+
				`"message":{"role":"assistant","content":"Hello back, holder of an STS token"}}]}`)
		default:
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":{"code":"401","message":"Access denied"}}`)
		}
	}))
}
