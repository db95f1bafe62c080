package app_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/app"
	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/testenv"
	"github.com/gatehouse/gatehouse/keyring"
	"github.com/gatehouse/gatehouse/storage"
	"github.com/gatehouse/gatehouse/storage/postgres/pgtest"
)

func get(t *testing.T, s *testenv.Server, url string) (*http.Response, []byte) {
	t.Helper()
	return do(t, s, http.MethodGet, url)
}

func do(t *testing.T, s *testenv.Server, method, url string) (*http.Response, []byte) {
	t.Helper()
	// "url|host" sends the request to url with another Host header (a name
	// the certificate does not cover).
	url, host, _ := strings.Cut(url, "|")
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := s.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

func TestServeRouting(t *testing.T) {
	s := testenv.Start(t)
	port := s.Addr.(*net.TCPAddr).Port
	tests := []struct {
		name, method, url string
		status            int
		code              string
	}{
		{"healthz", "GET", s.URL + "/healthz", 200, ""},
		{"readyz", "GET", s.URL + "/readyz", 200, ""},
		{"unknown-path", "GET", s.URL + "/no/such/path", 404, "NotFound"},
		{"wrong-method", "DELETE", s.URL + "/healthz", 405, "MethodNotAllowed"},
		{"unknown-host", "GET", s.URL + "/healthz|elsewhere.example:" + itoa(port), 404, "NotFound"},
		{"vault-host-unknown-path", "GET", "https://kv1.vault." + s.Host + "/nothing", 404, "NotFound"},
		{"account-host-unknown-path", "GET", "https://acct.cognitiveservices." + s.Host + "/nothing", 404, "NotFound"},
		{"ip-literal", "GET", "https://127.0.0.1:" + itoa(port) + "/healthz", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, s, tt.method, tt.url)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			if resp.Header.Get("x-ms-request-id") == "" {
				t.Error("no x-ms-request-id")
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q, want JSON", ct)
			}
			if tt.code == "" {
				return
			}
			var e struct {
				Error struct{ Code, Message string }
			}
			if err := json.Unmarshal(body, &e); err != nil || e.Error.Code != tt.code || e.Error.Message == "" {
				t.Errorf("body %s, want error code %s", body, tt.code)
			}
			if got := resp.Header.Get("x-ms-error-code"); got != tt.code {
				t.Errorf("x-ms-error-code %q, want %q", got, tt.code)
			}
		})
	}
	t.Run("metrics", func(t *testing.T) {
		_, body := get(t, s, s.URL+"/metrics")
		if !bytes.Contains(body, []byte(`gatehouse_http_requests_total{method="GET",status="200",surface="ops"}`)) {
			t.Errorf("metrics lack request counts:\n%.2000s", body)
		}
		if !bytes.Contains(body, []byte("gatehouse_http_request_duration_seconds_bucket")) {
			t.Error("metrics lack the latency histogram")
		}
	})
	t.Run("banner", func(t *testing.T) {
		b := s.Banner.String()
		for _, want := range []string{s.URL, "SSL_CERT_FILE=", "NODE_EXTRA_CA_CERTS=", "REQUESTS_CA_BUNDLE=", "AZURE_AUTHORITY_HOST=" + s.URL, s.CAFile} {
			if !strings.Contains(b, want) {
				t.Errorf("banner lacks %q:\n%s", want, b)
			}
		}
	})
}

func itoa(n int) string { return strconvItoa(n) }

func TestRestartKeepsDataCAAndKey(t *testing.T) {
	dir := t.TempDir()
	s := testenv.Start(t, testenv.WithDataDir(dir))
	ca1, _ := os.ReadFile(s.CAFile)
	key1, _ := os.ReadFile(filepath.Join(dir, "master.key"))
	if _, err := s.Store.Create(t.Context(), &storage.Object{Kind: "test", Key: "k", Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := testenv.Start(t, testenv.WithDataDir(dir))
	ca2, _ := os.ReadFile(s2.CAFile)
	key2, _ := os.ReadFile(filepath.Join(dir, "master.key"))
	if !bytes.Equal(ca1, ca2) || len(ca1) == 0 {
		t.Error("the CA changed across a restart")
	}
	if !bytes.Equal(key1, key2) || len(key1) == 0 {
		t.Error("the master key changed across a restart")
	}
	if _, err := s2.Store.Get(t.Context(), "test", "k"); err != nil {
		t.Errorf("data lost across a restart: %v", err)
	}
	if resp, _ := get(t, s2, s2.URL+"/healthz"); resp.StatusCode != 200 {
		t.Errorf("healthz after restart: %d", resp.StatusCode)
	}
}

func TestSecondServeOnSameDataDirFails(t *testing.T) {
	s := testenv.Start(t)
	s2, err := testenv.TryStart(t, testenv.WithDataDir(s.DataDir))
	if err == nil {
		s2.Close()
		t.Fatal("a second serve on the same data dir started")
	}
	if !strings.Contains(err.Error(), "in use by another gatehouse serve") {
		t.Errorf("unclear error: %v", err)
	}
	if resp, _ := get(t, s, s.URL+"/healthz"); resp.StatusCode != 200 {
		t.Error("the first node stopped answering")
	}
}

func TestBadConfiguration(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	file := filepath.Join(t.TempDir(), "a-file")
	os.WriteFile(file, []byte("x"), 0o600)
	wrongKey := "1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	tests := []struct {
		name string
		cfg  func(c *app.Config)
		want []string
	}{
		{"port-in-use", func(c *app.Config) { c.Listen = busy.Addr().String() }, []string{"address already in use"}},
		{"data-dir-is-a-file", func(c *app.Config) { c.DataDir = file }, []string{"data-dir", "not a directory"}},
		{"unreachable-postgres", func(c *app.Config) {
			c.Postgres = "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=2"
		}, []string{"postgres"}},
		{"malformed-dsn", func(c *app.Config) { c.Postgres = "postgres://%zz" }, []string{"postgres: the DSN does not parse"}},
		{"malformed-master-key", func(c *app.Config) { c.MasterKey = "1:not-base64!" }, []string{"GATEHOUSE_MASTER_KEY"}},
		{"bad-private-network", func(c *app.Config) { c.PrivateNetworks = "10.0.0.0/8,intranet" }, []string{"private-networks: 'intranet'"}},
		{"bad-proxy-protocol", func(c *app.Config) { c.ProxyProtocol = "lb.example" }, []string{"proxy-protocol: 'lb.example'"}},
		{"bad-upstream-network", func(c *app.Config) { c.UpstreamNetworks = "10.0.0.0/8 192.168.0.0/16" }, []string{"upstream-networks: '10.0.0.0/8 192.168.0.0/16'"}},
		{"workers-without-postgres", func(c *app.Config) { c.Workers = 2 }, []string{"workers: more than one worker needs --postgres"}},
		{"no-workers", func(c *app.Config) { c.Workers = 0 }, []string{"workers: 0 is not between 1 and 64"}},
		{"too-many-workers", func(c *app.Config) { c.Workers = 65 }, []string{"workers: 65 is not between 1 and 64"}},
		{"several-problems-at-once", func(c *app.Config) {
			c.Listen = "nonsense"
			c.LogFormat = "xml"
			c.MSIListen = "0.0.0.0:8444"
			c.TLSCert = "/nonexistent.pem"
		}, []string{"listen:", "log-format:", "msi-listen:", "tls-cert and tls-key", "tls-cert:"}},
		{"wrong-master-key", nil, []string{"does not match this database"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			if tt.cfg == nil { // wrong master key: a database made with another key
				s := testenv.Start(t, testenv.WithDataDir(dir))
				s.Close()
				tt.cfg = func(c *app.Config) { c.MasterKey = wrongKey }
			}
			before := snapshot(t, dir)
			s, err := testenv.TryStart(t, testenv.WithDataDir(dir), testenv.WithConfig(tt.cfg))
			if err == nil {
				s.Close()
				t.Fatal("started with a bad configuration")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if after := snapshot(t, dir); after != before {
				t.Errorf("the data directory changed:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

// snapshot describes a directory's files (names and sizes of the database
// and key files; the lock file is expected to exist once a node ran).
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return "(absent)"
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), "-shm") || strings.HasSuffix(e.Name(), "-wal") {
			continue // SQLite's shared memory and WAL are touched by any open
		}
		info, _ := e.Info()
		b.WriteString(e.Name() + ":" + itoa(int(info.Size())) + " ")
	}
	return b.String()
}

// TestSealedValuesAtRest is the canary: a value sealed by the keyring never
// appears in plaintext in the SQLite files or a PostgreSQL dump, and a
// flipped byte makes it fail to open.
func TestSealedValuesAtRest(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			var opts []testenv.Option
			var dsn string
			if backend == "postgres" {
				dsn = pgtest.DSN(t)
				opts = append(opts, testenv.WithPostgres(dsn))
			}
			s := testenv.Start(t, opts...)
			canary := "canary-" + rand.Text()
			aad := keyring.AAD("test", "canary")
			sealed, err := s.Sealer.Seal([]byte(canary), aad)
			if err != nil {
				t.Fatal(err)
			}
			ctx := t.Context()
			if _, err := s.Store.Create(ctx, &storage.Object{Kind: "test", Key: "canary", Data: []byte(`{}`), Sealed: sealed}); err != nil {
				t.Fatal(err)
			}
			var raw []byte
			if backend == "sqlite" {
				for _, f := range []string{"gatehouse.db", "gatehouse.db-wal"} {
					b, _ := os.ReadFile(filepath.Join(s.DataDir, f))
					raw = append(raw, b...)
				}
			} else {
				out, err := exec.Command("pg_dump", "--data-only", dsnForDump(dsn)).Output()
				if err != nil {
					t.Skipf("pg_dump: %v", err)
				}
				raw = out
			}
			if len(raw) == 0 {
				t.Fatal("read nothing from the database")
			}
			if bytes.Contains(raw, []byte(canary)) {
				t.Fatal("the sealed canary is in the database in plaintext")
			}
			o, err := s.Store.Get(ctx, "test", "canary")
			if err != nil {
				t.Fatal(err)
			}
			if got, err := s.Sealer.Open(o.Sealed, aad); err != nil || string(got) != canary {
				t.Fatalf("Open = %q, %v", got, err)
			}
			flipped := bytes.Clone(o.Sealed)
			flipped[len(flipped)/2] ^= 1
			if _, err := s.Sealer.Open(flipped, aad); err == nil {
				t.Fatal("a flipped byte still opens")
			}
			if _, err := s.Sealer.Open(o.Sealed, keyring.AAD("test", "other")); err == nil {
				t.Fatal("the value opens under another record's identity")
			}
		})
	}
}

// dsnForDump turns the test DSN (search_path as a parameter) into what
// pg_dump accepts: the schema goes to -n via the connection's options.
func dsnForDump(dsn string) string {
	// pg_dump rejects the unknown search_path URI parameter; dump the whole
	// database (each test has its own schema, so this includes ours).
	if i := strings.Index(dsn, "search_path="); i >= 0 {
		rest := dsn[i:]
		end := strings.IndexByte(rest, '&')
		if end < 0 {
			dsn = strings.TrimSuffix(dsn[:i], "&")
			dsn = strings.TrimSuffix(dsn, "?")
		} else {
			dsn = dsn[:i] + rest[end+1:]
		}
	}
	return dsn
}

func TestPostgresTwoNodes(t *testing.T) {
	dsn := pgtest.DSN(t)
	key := "1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{42}, 32))
	withKey := testenv.WithConfig(func(c *app.Config) { c.MasterKey = key })
	a := testenv.Start(t, testenv.WithPostgres(dsn), withKey)
	b := testenv.Start(t, testenv.WithPostgres(dsn), withKey)
	for _, s := range []*testenv.Server{a, b} {
		if resp, body := get(t, s, s.URL+"/readyz"); resp.StatusCode != 200 {
			t.Errorf("%s readyz: %d %s", s.URL, resp.StatusCode, body)
		}
	}
	caA, _ := os.ReadFile(a.CAFile)
	caB, _ := os.ReadFile(b.CAFile)
	if !bytes.Equal(caA, caB) {
		t.Error("two nodes of one deployment have different CAs")
	}
	// A node with another master key is refused.
	other := "1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{43}, 32))
	if c, err := testenv.TryStart(t, testenv.WithPostgres(dsn), testenv.WithConfig(func(c *app.Config) { c.MasterKey = other })); err == nil {
		c.Close()
		t.Error("a node with a different master key joined")
	}
}

func TestKeyringRotateWhileServing(t *testing.T) {
	s := testenv.Start(t)
	ctx := t.Context()
	aad := keyring.AAD("test", "secret")
	sealed, err := s.Sealer.Seal([]byte("value"), aad)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Store.Create(ctx, &storage.Object{Kind: "test", Key: "secret", Data: []byte(`{}`), Sealed: sealed}); err != nil {
		t.Fatal(err)
	}
	rot, err := app.RotateMasterKey(context.Background(), s.Config, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if rot.From != 1 || rot.To != 2 || rot.Rewrapped < 2 { // the CA key and ours
		t.Fatalf("rotation %+v", rot)
	}
	o, err := s.Store.Get(ctx, "test", "secret")
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := keyring.Version(o.Sealed); v != 2 {
		t.Errorf("value still under version %d", v)
	}
	// The running node opens it at once (it re-reads the key file).
	if got, err := s.Sealer.Open(o.Sealed, aad); err != nil || string(got) != "value" {
		t.Fatalf("running node: Open = %q, %v", got, err)
	}
	if resp, _ := get(t, s, s.URL+"/healthz"); resp.StatusCode != 200 {
		t.Error("node stopped answering")
	}
	// A restart uses the rotated key file.
	dir := s.DataDir
	s.Close()
	s2 := testenv.Start(t, testenv.WithDataDir(dir))
	if got, err := s2.Sealer.Open(o.Sealed, aad); err != nil || string(got) != "value" {
		t.Fatalf("after restart: Open = %q, %v", got, err)
	}
}

// TestExistingStoreWithoutKey: a node on a store that already holds data —
// restored into a new data directory with --master-key-file, or a
// PostgreSQL database another node set up — but given no master key
// refuses to start, saying where the key goes, and writes no key file: a
// key is generated only for a new, empty store.
func TestExistingStoreWithoutKey(t *testing.T) {
	want := []string{"already holds data", "master.key", "--master-key-file", "GATEHOUSE_MASTER_KEY"}
	check := func(t *testing.T, dir string, opts ...testenv.Option) {
		t.Helper()
		before := snapshot(t, dir)
		s, err := testenv.TryStart(t, append(opts, testenv.WithDataDir(dir))...)
		if err == nil {
			s.Close()
			t.Fatal("started on a store with data, without its master key")
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not mention %q", err, w)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, "master.key")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a master.key was written beside a store it cannot open (stat: %v)", err)
		}
		if after := snapshot(t, dir); after != before {
			t.Errorf("the data directory changed:\nbefore %s\nafter  %s", before, after)
		}
	}
	t.Run("sqlite-restored", func(t *testing.T) {
		a := testenv.Start(t)
		var backup bytes.Buffer
		if _, err := app.Backup(t.Context(), a.Config, &backup, time.Now()); err != nil {
			t.Fatal(err)
		}
		key := filepath.Join(a.DataDir, "master.key")
		cfg := app.DefaultConfig()
		cfg.DataDir, cfg.MasterKeyFile = filepath.Join(t.TempDir(), "restored"), key
		if _, err := app.Restore(t.Context(), cfg, &backup); err != nil {
			t.Fatal(err)
		}
		check(t, cfg.DataDir)
		// With the key where the message says, it starts.
		data, _ := os.ReadFile(key)
		if err := os.WriteFile(filepath.Join(cfg.DataDir, "master.key"), data, 0o600); err != nil {
			t.Fatal(err)
		}
		testenv.Start(t, testenv.WithDataDir(cfg.DataDir))
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := pgtest.DSN(t)
		a := testenv.Start(t, testenv.WithPostgres(dsn)) // generates its master.key
		a.Close()
		check(t, filepath.Join(t.TempDir(), "second-node"), testenv.WithPostgres(dsn))
	})
}
