package crosstest

import (
	"encoding/base64"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// testAuthHeaderSweep sends each surface's read route a table of broken
// credentials — empty and odd-cased schemes, tokens that are not JWTs, are
// oversized, are unsigned or signed with HMAC, two Authorization headers,
// keys with control or non-ASCII bytes — and checks each is refused with
// 401 (403 where a surface says the credential is of the wrong kind) in
// the surface's error shape, never a 5xx and never served.
func testAuthHeaderSweep(t *testing.T, e *env) {
	a := e.createAccount(t, e.group, "authsweep", "AIServices", false)
	e.createVault(t, "authsweepkv")
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	noneJWT := b64(`{"alg":"none","typ":"JWT"}`) + "." + b64(`{"aud":"https://management.azure.com","exp":4102444800}`) + "."
	hsJWT := b64(`{"alg":"HS256","typ":"JWT"}`) + "." + b64(`{"aud":"https://management.azure.com","exp":4102444800}`) + ".c2ln"
	// The real token of another audience: valid signature, wrong surface.
	graphToken := e.Token(t, e.Credential(t), "https://graph.microsoft.com/.default")
	variants := map[string][]string{
		"none":             nil,
		"empty":            {""},
		"scheme-only":      {"Bearer"},
		"scheme-space":     {"Bearer "},
		"basic":            {"Basic " + b64("user:pass")},
		"lowercase":        {"bearer " + noneJWT},
		"not-jwt":          {"Bearer not-a-jwt"},
		"two-dots":         {"Bearer a.b.c"},
		"bad-base64":       {"Bearer !!!.@@@.###"},
		"alg-none":         {"Bearer " + noneJWT},
		"alg-hs256":        {"Bearer " + hsJWT},
		"huge":             {"Bearer " + strings.Repeat("A", 60000)},
		"non-ascii":        {"Bearer Ã¼.Ã¼.Ã¼"},
		"two-headers":      {"Bearer " + noneJWT, "Bearer " + hsJWT},
		"nested-bearer":    {"Bearer Bearer " + noneJWT},
		"trailing-garbage": {"Bearer " + e.mgmtToken + " x"},
	}
	// good is the credential the route serves (the control), other a real
	// token, correctly signed, of another surface's audience.
	vaultToken := e.Token(t, e.Credential(t), "https://vault."+e.Host+"/.default")
	targets := []struct {
		label, url, good, other string
		key                     bool // the route takes an account key too
	}{
		{"arm", e.URL + "/subscriptions/" + e.sub + "/resourceGroups/" + e.group + "/providers/Microsoft.CognitiveServices/accounts?api-version=" + armAPI,
			"Authorization: Bearer " + e.mgmtToken, graphToken, false},
		{"kv", e.vaultURL("authsweepkv") + "secrets?api-version=7.4", "Authorization: Bearer " + vaultToken, e.mgmtToken, false},
		{"graph", e.URL + "/v1.0/applications", "Authorization: Bearer " + graphToken, e.mgmtToken, false},
		{"openai-models", e.URL + "/ai/authsweep/openai/v1/models", "Api-Key: " + a.key1, e.mgmtToken, true},
		{"openai-base-models", e.URL + "/ai/authsweep/openai/models?api-version=2024-10-21", "Api-Key: " + a.key1, e.mgmtToken, true},
		{"language", e.URL + "/ai/authsweep/language/:analyze-text?api-version=2023-04-01", "Ocp-Apim-Subscription-Key: " + a.key1, graphToken, true},
	}
	keys := map[string]string{
		"key-empty":      "",
		"key-wrong":      strings.Repeat("0", 64),
		"key-other-case": strings.ToUpper(a.key1),
		"key-prefix":     a.key1[:10],
		"key-longer":     a.key1 + "0",
		"key-non-ascii":  "Ã¼" + a.key1,
		"key-huge":       strings.Repeat("k", 60000),
	}
	clients := e.protocolClients(t)
	fastBefore := e.Main.FastPathStats().FastRequests
	var mu sync.Mutex
	statuses := map[int]int{}
	// send makes the request over HTTP/2 and over HTTP/1.1 (the fast path).
	send := func(t *testing.T, url string, set func(h http.Header), check func(proto string, status int, body []byte)) {
		t.Helper()
		method, body := http.MethodGet, ""
		if strings.Contains(url, "analyze-text") {
			method, body = http.MethodPost, `{"kind":"LanguageDetection","analysisInput":{"documents":[{"id":"1","text":"hello"}]}}`
		}
		for proto, c := range clients {
			req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			set(req.Header)
			// A head too large for the fast path is handed to net/http,
			// which then keeps the connection: it is closed after such a
			// request, so that the next ones are the fast path's again.
			for _, vv := range req.Header {
				for _, v := range vv {
					req.Close = req.Close || len(v) > 4<<10
				}
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Errorf("%s over %s: %v", url, proto, err)
				continue
			}
			data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			mu.Lock()
			statuses[resp.StatusCode]++
			mu.Unlock()
			check(proto, resp.StatusCode, data)
		}
	}
	do := func(t *testing.T, label, what, url string, set func(h http.Header)) {
		t.Helper()
		send(t, url, set, func(proto string, status int, data []byte) {
			switch {
			case status >= 500:
				t.Errorf("%s %s over %s: %d %.300s", label, what, proto, status, data)
			case status < 400:
				t.Errorf("%s %s over %s: %d, a broken credential was served", label, what, proto, status)
			case status == 431 || status == 400 && strings.HasPrefix(what, "huge"):
				// A header too large for the server: refused before routing.
			case status != 401 && status != 403:
				t.Errorf("%s %s over %s: %d, want 401 or 403: %.300s", label, what, proto, status, data)
			case !errorShaped(data, false):
				t.Errorf("%s %s over %s: %d, not an error of its surface: %.300s", label, what, proto, status, data)
			}
		})
	}
	for _, tg := range targets {
		t.Run(tg.label, func(t *testing.T) {
			// The control: the right credential is served.
			send(t, tg.url, func(h http.Header) {
				k, v, _ := strings.Cut(tg.good, ": ")
				h.Set(k, v)
			}, func(proto string, status int, data []byte) {
				if status != http.StatusOK {
					t.Fatalf("%s with its credential over %s: %d %.300s", tg.label, proto, status, data)
				}
			})
			all := map[string][]string{"other-audience": {"Bearer " + tg.other}}
			for what, vals := range variants {
				all[what] = vals
			}
			for what, vals := range all {
				do(t, tg.label, what, tg.url, func(h http.Header) {
					for _, v := range vals {
						h.Add("Authorization", v)
					}
				})
			}
			if tg.key {
				for what, k := range keys {
					do(t, tg.label, what, tg.url, func(h http.Header) { h.Set("Ocp-Apim-Subscription-Key", k) })
					do(t, tg.label, what+"-api-key", tg.url, func(h http.Header) { h.Set("api-key", k) })
				}
			}
		})
	}
	t.Logf("answers by status: %v", statuses)
	if n := e.Main.FastPathStats().FastRequests - fastBefore; n < 50 {
		t.Errorf("the HTTP/1.1 fast path served %d of the sweep's requests", n)
	}
	if n := statuses[401] + statuses[403]; n < 100 {
		t.Errorf("answers by status %v: the sweep did not reach the routes", statuses)
	}
	e.AssertNotLogged(t, a.key1, graphToken, e.mgmtToken, vaultToken)
}
