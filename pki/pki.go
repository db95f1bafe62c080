// Package pki is Gatehouse's own certificate authority: a CA (ECDSA P-256)
// created on first start and kept in storage with its private key sealed by
// the keyring, so every node of a deployment issues server certificates
// from the same CA; and a Manager that keeps the server certificate current
// (issue, renew before expiry, reload operator-supplied files) behind
// tls.Config.GetCertificate.
//
// Files in the data directory:
//
//	ca.pem          the CA certificate: what clients trust (SSL_CERT_FILE, ...)
//	server.pem      this node's server certificate chain
//	server-key.pem  its private key (0600)
package pki

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"time"

	"github.com/gatehouse/gatehouse/keyring"
	"github.com/gatehouse/gatehouse/storage"
)

// Sealer seals and opens values bound to additional data (the keyring).
type Sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(sealed, aad []byte) ([]byte, error)
}

const (
	kind  = "pki"
	caKey = "ca"
	// CAValidity is the lifetime of a generated CA.
	CAValidity = 10 * 365 * 24 * time.Hour
	// ServerValidity is the lifetime of an issued server certificate; it is
	// renewed once less than a third remains.
	ServerValidity = 90 * 24 * time.Hour
)

type caRecord struct {
	CertPEM string `json:"certPem"`
}

// CA is a loaded certificate authority.
type CA struct {
	Cert    *x509.Certificate
	CertPEM []byte
	key     *ecdsa.PrivateKey
}

// LoadOrCreateCA returns the deployment's CA, creating it on first start.
// Two nodes starting together agree on one CA: the loser of the Create race
// reads the winner's.
func LoadOrCreateCA(ctx context.Context, objs storage.Objects, sealer Sealer, now time.Time, random io.Reader) (*CA, error) {
	table := storage.NewTable[caRecord](objs, kind)
	rec, err := table.Get(ctx, caKey)
	if errors.Is(err, storage.ErrNotFound) {
		var ca *CA
		ca, rec, err = newCA(sealer, now, random)
		if err != nil {
			return nil, err
		}
		if _, err = table.Create(ctx, rec); err == nil {
			return ca, nil
		}
		if !errors.Is(err, storage.ErrAlreadyExists) {
			return nil, fmt.Errorf("pki: store CA: %w", err)
		}
		rec, err = table.Get(ctx, caKey)
	}
	if err != nil {
		return nil, fmt.Errorf("pki: load CA: %w", err)
	}
	return openCA(rec, sealer)
}

func newCA(sealer Sealer, now time.Time, random io.Reader) (*CA, *storage.Record[caRecord], error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), random)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(random),
		Subject:               pkix.Name{CommonName: "Gatehouse CA", Organization: []string{"Gatehouse"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(random, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	sealed, err := sealer.Seal(keyDER, keyring.AAD(kind, caKey))
	if err != nil {
		return nil, nil, fmt.Errorf("pki: seal CA key: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return &CA{Cert: cert, CertPEM: certPEM, key: key},
		&storage.Record[caRecord]{Key: caKey, Value: caRecord{CertPEM: string(certPEM)}, Sealed: sealed}, nil
}

func openCA(rec *storage.Record[caRecord], sealer Sealer) (*CA, error) {
	block, _ := pem.Decode([]byte(rec.Value.CertPEM))
	if block == nil {
		return nil, errors.New("pki: stored CA certificate is not PEM")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("pki: stored CA certificate: %w", err)
	}
	keyDER, err := sealer.Open(rec.Sealed, keyring.AAD(kind, caKey))
	if err != nil {
		return nil, fmt.Errorf("pki: open CA key: %w", err)
	}
	k, err := x509.ParsePKCS8PrivateKey(keyDER)
	if err != nil {
		return nil, fmt.Errorf("pki: CA key: %w", err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("pki: CA key is not ECDSA")
	}
	return &CA{Cert: cert, CertPEM: []byte(rec.Value.CertPEM), key: key}, nil
}

func serial(random io.Reader) *big.Int {
	n, err := rand.Int(random, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err)
	}
	return n
}

// Issue returns a server certificate (leaf then CA) and key for the names.
func (ca *CA) Issue(dnsNames []string, ips []net.IP, now time.Time, validity time.Duration, random io.Reader) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), random)
	if err != nil {
		return nil, nil, err
	}
	cn := "gatehouse"
	if len(dnsNames) > 0 {
		cn = dnsNames[0]
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(random),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"Gatehouse"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     dnsNames,
		IPAddresses:  ips,
	}
	der, err := x509.CreateCertificate(random, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	certPEM = append(certPEM, ca.CertPEM...)
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	return certPEM, keyPEM, nil
}

// ServerNames returns the SANs a server certificate for host needs: the
// host, vault.<host> and the wildcards for vault, account and OpenAI hosts,
// localhost, and the loopback addresses.
func ServerNames(host string) ([]string, []net.IP) {
	ips := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	var names []string
	if ip := net.ParseIP(host); ip != nil {
		if !ip.IsLoopback() {
			ips = append(ips, ip)
		}
	} else {
		names = append(names, host, "vault."+host, "*.vault."+host, "*.cognitiveservices."+host, "*.openai."+host)
	}
	if host != "localhost" {
		names = append(names, "localhost")
	}
	return names, ips
}
