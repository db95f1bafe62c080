package pki

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Manager serves the current server certificate and keeps it current.
type Manager struct {
	// DataDir receives ca.pem, server.pem and server-key.pem.
	DataDir string
	// Host is the public authority's host name (no port).
	Host string
	// CA issues server certificates. Nil when the operator supplies them.
	CA *CA
	// CertFile and KeyFile are an operator-supplied certificate; they are
	// re-read when they change.
	CertFile, KeyFile string

	Now    func() time.Time
	Rand   io.Reader
	Logger *slog.Logger

	cert    atomic.Pointer[tls.Certificate]
	mu      sync.Mutex
	modTime time.Time
}

// CAFile is the path of the CA certificate clients trust ("" when the
// operator supplies the server certificate).
func (m *Manager) CAFile() string {
	if m.CA == nil {
		return ""
	}
	return filepath.Join(m.DataDir, "ca.pem")
}

func (m *Manager) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

func (m *Manager) rand() io.Reader {
	if m.Rand != nil {
		return m.Rand
	}
	return rand.Reader
}

func (m *Manager) logger() *slog.Logger {
	if m.Logger != nil {
		return m.Logger
	}
	return slog.Default()
}

// Load makes a certificate available: the operator's files, or the one in
// the data directory if it is still good, or a new one.
func (m *Manager) Load() error {
	if m.CA == nil {
		return m.loadOperatorFiles(true)
	}
	if err := writeFileAtomic(m.CAFile(), m.CA.CertPEM, 0o644); err != nil {
		return err
	}
	return m.renew(true)
}

// GetCertificate is tls.Config.GetCertificate.
func (m *Manager) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c := m.cert.Load()
	if c == nil {
		return nil, errors.New("pki: no certificate loaded")
	}
	return c, nil
}

// Leaf returns the certificate being served.
func (m *Manager) Leaf() *x509.Certificate {
	if c := m.cert.Load(); c != nil {
		return c.Leaf
	}
	return nil
}

// Run checks every interval (0 = one hour) whether the certificate must be
// renewed or reloaded, until ctx is done.
func (m *Manager) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = time.Hour
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := m.Check(); err != nil {
				m.logger().Error("tls: certificate check failed", "err", err)
			}
		}
	}
}

// Check renews a generated certificate that is due, or reloads operator
// files that changed.
func (m *Manager) Check() error {
	if m.CA == nil {
		return m.loadOperatorFiles(false)
	}
	return m.renew(false)
}

func (m *Manager) serverFiles() (string, string) {
	return filepath.Join(m.DataDir, "server.pem"), filepath.Join(m.DataDir, "server-key.pem")
}

// renew issues a new certificate when the current one (in memory, or on disk
// at start) is missing, due, for other names, or from another CA.
func (m *Manager) renew(fromDisk bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	certFile, keyFile := m.serverFiles()
	names, ips := ServerNames(m.Host)
	cur := m.cert.Load()
	if cur == nil && fromDisk {
		if c, err := tls.LoadX509KeyPair(certFile, keyFile); err == nil {
			cur = &c
		}
	}
	if cur != nil && m.good(cur.Leaf, names, ips) {
		m.cert.Store(cur)
		return nil
	}
	certPEM, keyPEM, err := m.CA.Issue(names, ips, m.now(), ServerValidity, m.rand())
	if err != nil {
		return fmt.Errorf("pki: issue server certificate: %w", err)
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(keyFile, keyPEM, 0o600); err != nil {
		return err
	}
	if err := writeFileAtomic(certFile, certPEM, 0o644); err != nil {
		return err
	}
	m.cert.Store(&c)
	m.logger().Info("tls: issued server certificate", "not_after", c.Leaf.NotAfter.UTC().Format(time.RFC3339))
	return nil
}

// good reports whether leaf can keep being served: signed by our CA, for
// exactly these names, with more than a third of its lifetime left.
func (m *Manager) good(leaf *x509.Certificate, names []string, ips []net.IP) bool {
	if leaf == nil || leaf.CheckSignatureFrom(m.CA.Cert) != nil {
		return false
	}
	if !slices.Equal(leaf.DNSNames, names) || len(leaf.IPAddresses) != len(ips) {
		return false
	}
	for i := range ips {
		if !leaf.IPAddresses[i].Equal(ips[i]) {
			return false
		}
	}
	life := leaf.NotAfter.Sub(leaf.NotBefore)
	return leaf.NotAfter.Sub(m.now()) > life/3
}

func (m *Manager) loadOperatorFiles(first bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, err := os.Stat(m.CertFile)
	if err != nil {
		return fmt.Errorf("pki: TLS certificate: %w", err)
	}
	kst, err := os.Stat(m.KeyFile)
	if err != nil {
		return fmt.Errorf("pki: TLS key: %w", err)
	}
	mod := st.ModTime()
	if kst.ModTime().After(mod) {
		mod = kst.ModTime()
	}
	if !first && mod.Equal(m.modTime) {
		return nil
	}
	c, err := tls.LoadX509KeyPair(m.CertFile, m.KeyFile)
	if err != nil {
		return fmt.Errorf("pki: TLS certificate %s and key %s: %w", m.CertFile, m.KeyFile, err)
	}
	m.cert.Store(&c)
	m.modTime = mod
	if !first {
		m.logger().Info("tls: reloaded operator certificate", "not_after", c.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// writeFileAtomic writes data to path through a temporary file and rename,
// so a reader never sees half a file.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
