package app

import (
	"io"
	"net"
	"testing"

	"github.com/pires/go-proxyproto"

	"github.com/gatehouse/gatehouse/internal/rawconn"
)

// TestListenRawSyscalls: the node's connections make raw system calls
// unless --raw-syscalls=false, also when the PROXY protocol is read.
func TestListenRawSyscalls(t *testing.T) {
	isRaw := func(c net.Conn) bool { _, ok := c.(*rawconn.Conn); return ok }
	isPlain := func(c net.Conn) bool { _, ok := c.(*net.TCPConn); return ok }
	underProxy := func(is func(net.Conn) bool) func(net.Conn) bool {
		return func(c net.Conn) bool { pc, ok := c.(*proxyproto.Conn); return ok && is(pc.Raw()) }
	}
	for _, tc := range []struct {
		name     string
		raw      bool
		proxy    string
		wantConn func(net.Conn) bool
	}{
		{"raw", true, "", isRaw},
		{"plain", false, "", isPlain},
		{"raw-under-proxy-protocol", true, "127.0.0.1/32", underProxy(isRaw)},
		{"plain-under-proxy-protocol", false, "127.0.0.1/32", underProxy(isPlain)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &Main{Config: DefaultConfig()}
			m.Config.Listen, m.Config.RawSyscalls, m.Config.ProxyProtocol = "127.0.0.1:0", tc.raw, tc.proxy
			ln, err := m.listen()
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				c, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					return
				}
				defer c.Close()
				if tc.proxy != "" {
					c.Write([]byte("PROXY TCP4 192.0.2.7 127.0.0.1 40000 8443\r\n"))
				}
				c.Write([]byte("hello"))
			}()
			c, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if !tc.wantConn(c) {
				t.Errorf("accepted a %T", c)
			}
			if got, err := io.ReadAll(c); string(got) != "hello" || err != nil {
				t.Errorf("read %q, %v", got, err)
			}
			if tc.proxy != "" && c.RemoteAddr().String() != "192.0.2.7:40000" {
				t.Errorf("RemoteAddr = %v, want the PROXY header's", c.RemoteAddr())
			}
		})
	}
}

// TestIPHostWarning: the banner warns of a --host under which no vault
// name can resolve.
func TestIPHostWarning(t *testing.T) {
	for host, warn := range map[string]bool{"127.0.0.1:8443": true, "[::1]:8443": true, "10.0.0.5": true,
		"localhost:8443": false, "gatehouse.example.test": false} {
		if got := ipHostWarning(host) != ""; got != warn {
			t.Errorf("%s: warning %v, want %v", host, got, warn)
		}
	}
}
