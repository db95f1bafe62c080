package gatewaytest

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/cognitiveservices/armcognitiveservices/v2"
	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/app"
	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/testenv"
	"github.com/pires/go-proxyproto"
)

// TestProxyProtocol: behind a load balancer named in --proxy-protocol,
// the client address is the PROXY header's (v1 and v2), so an account's
// network rules apply to the real client; a header from anywhere else is
// never read (the TLS handshake fails), and without a header the balancer's
// own address counts.
func TestProxyProtocol(t *testing.T) {
	e := newEnv(t, testenv.WithConfig(func(c *app.Config) { c.ProxyProtocol = "127.0.0.1" }))
	a := e.createAccount(t, "behind-lb", "TextAnalytics", &armcognitiveservices.AccountProperties{
		NetworkACLs: &armcognitiveservices.NetworkRuleSet{DefaultAction: ptr(armcognitiveservices.NetworkRuleActionDeny),
			IPRules: []*armcognitiveservices.IPRule{{Value: ptr("203.0.113.0/24")}}}})
	body := `{"kind":"LanguageDetection","analysisInput":{"documents":[{"id":"1","text":"Hello world"}]}}`
	// send makes one request over a new connection that starts with header
	// (nil: none) and returns the status, or the connection's error.
	send := func(addr string, header *proxyproto.Header) (int, error) {
		t.Helper()
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		if header != nil {
			if _, err := header.WriteTo(nc); err != nil {
				t.Fatal(err)
			}
		}
		tc := tls.Client(nc, &tls.Config{RootCAs: e.CAPool, ServerName: "localhost", NextProtos: []string{"http/1.1"}})
		if err := tc.Handshake(); err != nil {
			return 0, err
		}
		path := strings.TrimPrefix(a.endpoint, "https://localhost:"+strconv.Itoa(e.Addr.(*net.TCPAddr).Port))
		req := "POST " + path + languagePath + " HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nOcp-Apim-Subscription-Key: " +
			a.key1 + "\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
		if _, err := io.WriteString(tc, req); err != nil {
			return 0, err
		}
		resp, err := http.ReadResponse(bufio.NewReader(tc), nil)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	from := func(version byte, client string) *proxyproto.Header {
		src := netip.MustParseAddrPort(client)
		return &proxyproto.Header{Version: version, Command: proxyproto.PROXY, TransportProtocol: proxyproto.TCPv4,
			SourceAddr: net.TCPAddrFromAddrPort(src), DestinationAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 443}}
	}
	for _, c := range []struct {
		name   string
		header *proxyproto.Header
		status int
	}{
		{"v1-client-in-the-rules", from(1, "203.0.113.9:40000"), http.StatusOK},
		{"v2-client-in-the-rules", from(2, "203.0.113.10:40001"), http.StatusOK},
		{"v1-client-outside", from(1, "198.51.100.7:40002"), http.StatusForbidden},
		{"v2-client-outside", from(2, "198.51.100.8:40003"), http.StatusForbidden},
		{"no-header-the-balancer-itself", nil, http.StatusForbidden},
	} {
		status, err := send(e.Addr.String(), c.header)
		if err != nil || status != c.status {
			t.Errorf("%s: %d %v, want %d", c.name, status, err, c.status)
		}
	}
	// The access log of a refused request names the real client.
	if !strings.Contains(e.Logs.String(), "198.51.100.7:40002") {
		t.Errorf("the log does not name the client behind the balancer:\n%.3000s", e.Logs.String())
	}

	e.AssertNotLogged(t, a.key1, a.key2)

	// A node that trusts no balancer does not read a header: a client
	// cannot choose its own address.
	plain := newEnv(t)
	if status, err := send(plain.Addr.String(), from(1, "203.0.113.9:40000")); err == nil {
		t.Errorf("a PROXY header sent to a node without --proxy-protocol was served: %d", status)
	}
}
