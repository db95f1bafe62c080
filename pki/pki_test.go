package pki

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"
)

type nopSealer struct{}

func (nopSealer) Seal(p, _ []byte) ([]byte, error) { return p, nil }
func (nopSealer) Open(s, _ []byte) ([]byte, error) { return s, nil }

func newTestCA(t *testing.T, now time.Time) *CA {
	t.Helper()
	ca, rec, err := newCA(nopSealer{}, now, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	again, err := openCA(rec, nopSealer{})
	if err != nil || !again.Cert.Equal(ca.Cert) {
		t.Fatalf("the stored CA does not reopen: %v", err)
	}
	return ca
}

func TestManagerIssuesRenewsAndReissues(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	m := &Manager{DataDir: dir, Host: "gw.example", CA: newTestCA(t, now), Now: func() time.Time { return now }}
	if err := m.Load(); err != nil {
		t.Fatal(err)
	}
	first := m.Leaf()
	pool := x509.NewCertPool()
	pem, _ := os.ReadFile(m.CAFile())
	pool.AppendCertsFromPEM(pem)
	for _, name := range []string{"gw.example", "kv1.vault.gw.example", "acct.cognitiveservices.gw.example", "acct.openai.gw.example", "localhost", "127.0.0.1"} {
		if _, err := first.Verify(x509.VerifyOptions{DNSName: name, Roots: pool, CurrentTime: now}); err != nil {
			t.Errorf("certificate does not cover %s: %v", name, err)
		}
	}
	if st, _ := os.Stat(filepath.Join(dir, "server-key.pem")); st.Mode().Perm() != 0o600 {
		t.Errorf("server key mode %v", st.Mode().Perm())
	}

	// Not due: kept.
	now = now.Add(30 * 24 * time.Hour)
	m.Check()
	if !m.Leaf().Equal(first) {
		t.Error("renewed too early")
	}
	// A third of the life left: renewed.
	now = now.Add(31 * 24 * time.Hour)
	m.Check()
	renewed := m.Leaf()
	if renewed.Equal(first) || !renewed.NotAfter.After(first.NotAfter) {
		t.Fatal("not renewed when due")
	}

	// A restart on the same directory reuses the certificate on disk...
	m2 := &Manager{DataDir: dir, Host: "gw.example", CA: m.CA, Now: func() time.Time { return now }}
	if err := m2.Load(); err != nil || !m2.Leaf().Equal(renewed) {
		t.Fatalf("restart did not reuse the certificate: %v", err)
	}
	// ...unless the host changed.
	m3 := &Manager{DataDir: dir, Host: "other.example", CA: m.CA, Now: func() time.Time { return now }}
	if err := m3.Load(); err != nil || m3.Leaf().Equal(renewed) || m3.Leaf().VerifyHostname("other.example") != nil {
		t.Fatalf("new host did not get a new certificate: %v", err)
	}
	if _, err := m3.GetCertificate(&tls.ClientHelloInfo{}); err != nil {
		t.Fatal(err)
	}
}

func TestOperatorCertificateReload(t *testing.T) {
	now := time.Now()
	ca := newTestCA(t, now)
	dir := t.TempDir()
	write := func(host string) {
		c, k, err := ca.Issue([]string{host}, nil, now, time.Hour, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "op.pem"), c, 0o644)
		os.WriteFile(filepath.Join(dir, "op-key.pem"), k, 0o600)
	}
	write("one.example")
	m := &Manager{DataDir: dir, CertFile: filepath.Join(dir, "op.pem"), KeyFile: filepath.Join(dir, "op-key.pem")}
	if err := m.Load(); err != nil {
		t.Fatal(err)
	}
	if m.Leaf().VerifyHostname("one.example") != nil {
		t.Fatal("wrong certificate")
	}
	write("two.example")
	later := now.Add(time.Second)
	os.Chtimes(filepath.Join(dir, "op.pem"), later, later)
	if err := m.Check(); err != nil {
		t.Fatal(err)
	}
	if m.Leaf().VerifyHostname("two.example") != nil {
		t.Fatal("changed operator certificate not reloaded")
	}
	if m.CAFile() != "" {
		t.Error("operator mode reports a CA file")
	}
}
