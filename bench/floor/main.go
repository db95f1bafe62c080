// Command floor is the measuring stick for the gateway's data plane: the
// least a Go program must do to be a key-checking TLS reverse proxy — a
// hand-written HTTP/1.1 loop on each TLS connection, the key compared in
// constant time against KEY1/KEY2 (401 otherwise, as dataplane.sh's nginx
// does), one upstream connection per client connection, Content-Length
// bodies only. It is not a product: no chunked bodies, no routing, no
// limits. It answers "how much of the gap to nginx is Go, and how much is
// net/http and our layers?" in the same run as nginx:
//
//	go build -o /tmp/floor ./bench/floor
//	TARGET_NAME=go-floor TARGET_URL=https://127.0.0.1:18095/v1/chat/completions \
//	  TARGET_CMD="/tmp/floor -cert C -key K -addr 127.0.0.1:18095 -upstream 127.0.0.1:18080" \
//	  TARGETS="upstream nginx-tls" ../shared/bench/dataplane.sh
package main

import (
	"bufio"
	"bytes"
	"crypto/subtle"
	"crypto/tls"
	"flag"
	"io"
	"log"
	"net"
	"os"
	"strconv"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18095", "listen address (TLS)")
	up := flag.String("upstream", "127.0.0.1:18080", "upstream address (plain HTTP/1.1)")
	cert := flag.String("cert", "", "TLS certificate (PEM)")
	key := flag.String("key", "", "TLS key (PEM)")
	flag.Parse()
	keys := [][]byte{[]byte(env("KEY1", "bench-key-1-7f3a9c2e5b8d4f10")), []byte(env("KEY2", "bench-key-2-1c6e8a4d2f9b7e35"))}
	c, err := tls.LoadX509KeyPair(*cert, *key)
	if err != nil {
		log.Fatal(err)
	}
	ln, err := tls.Listen("tcp", *addr, &tls.Config{Certificates: []tls.Certificate{c}, NextProtos: []string{"http/1.1"}})
	if err != nil {
		log.Fatal(err)
	}
	for {
		conn, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go serve(conn, *up, keys)
	}
}

func env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

var (
	keyHeader    = []byte("ocp-apim-subscription-key:")
	lengthHeader = []byte("content-length:")
	denied       = response401()
)

func response401() []byte {
	body := `{"error":{"code":"401","message":"Access denied due to invalid subscription key."}}`
	return []byte("HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}

func serve(c net.Conn, upstream string, keys [][]byte) {
	defer c.Close()
	uc, err := net.Dial("tcp", upstream)
	if err != nil {
		return
	}
	defer uc.Close()
	br, bw := bufio.NewReaderSize(c, 8192), bufio.NewWriterSize(c, 8192)
	ubr, ubw := bufio.NewReaderSize(uc, 8192), bufio.NewWriterSize(uc, 8192)
	body := make([]byte, 0, 4096)
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return
		}
		ubw.Write(line)
		n, ok := 0, false
		for {
			h, err := br.ReadSlice('\n')
			if err != nil {
				return
			}
			if len(h) <= 2 {
				break
			}
			lower := bytes.ToLower(h)
			switch {
			case bytes.HasPrefix(lower, lengthHeader):
				n, _ = strconv.Atoi(string(bytes.TrimSpace(h[len(lengthHeader):])))
			case bytes.HasPrefix(lower, keyHeader):
				v := bytes.TrimSpace(h[len(keyHeader):])
				ok = subtle.ConstantTimeCompare(v, keys[0])|subtle.ConstantTimeCompare(v, keys[1]) == 1
				continue // the upstream never sees the client's key
			}
			ubw.Write(h)
		}
		if n < 0 || n > cap(body) {
			return
		}
		body = body[:n]
		if _, err := io.ReadFull(br, body); err != nil {
			return
		}
		if !ok {
			ubw.Reset(uc)
			bw.Write(denied)
			bw.Flush()
			continue
		}
		ubw.WriteString("\r\n")
		ubw.Write(body)
		if ubw.Flush() != nil {
			return
		}
		m := 0
		for {
			h, err := ubr.ReadSlice('\n')
			if err != nil {
				return
			}
			bw.Write(h)
			if len(h) <= 2 {
				break
			}
			if lower := bytes.ToLower(h); bytes.HasPrefix(lower, lengthHeader) {
				m, _ = strconv.Atoi(string(bytes.TrimSpace(h[len(lengthHeader):])))
			}
		}
		if m < 0 || m > cap(body) {
			return
		}
		body = body[:m]
		if _, err := io.ReadFull(ubr, body); err != nil {
			return
		}
		bw.Write(body)
		if bw.Flush() != nil {
			return
		}
	}
}
