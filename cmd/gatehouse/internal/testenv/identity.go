package testenv

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// Cloud is the cloud configuration that points Azure SDK clients at the
// node: the authority host and the management API (ARM) endpoint, which
// is the node itself.
func (s *Server) Cloud() cloud.Configuration {
	return cloud.Configuration{
		ActiveDirectoryAuthorityHost: s.URL + "/",
		Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
			cloud.ResourceManager: {Endpoint: s.URL, Audience: "https://management.azure.com"},
		},
	}
}

// ClientOptions returns azcore options for any SDK client or credential:
// the node's Transport (trusts its CA, dials every host to it), its cloud
// configuration, and no retries (a test should see the first answer).
func (s *Server) ClientOptions() azcore.ClientOptions {
	return azcore.ClientOptions{
		Cloud:     s.Cloud(),
		Transport: s.Client,
		Retry:     policy.RetryOptions{MaxRetries: -1},
	}
}

// Credential returns a ClientSecretCredential for the bootstrap service
// principal (Global Administrator of the directory; the management API
// makes it Owner of the default subscription), using the GUID tenant with
// instance discovery disabled.
func (s *Server) Credential(t testing.TB) azcore.TokenCredential {
	t.Helper()
	if s.Bootstrap == nil {
		t.Fatal("testenv: this node has no bootstrap credentials (it did not bootstrap the store)")
	}
	return s.SecretCredential(t, s.Bootstrap.ClientID, s.Bootstrap.ClientSecret)
}

// SecretCredential returns a ClientSecretCredential for any service
// principal of the default tenant.
func (s *Server) SecretCredential(t testing.TB, clientID, secret string) azcore.TokenCredential {
	t.Helper()
	cred, err := azidentity.NewClientSecretCredential(s.Directory.DefaultTenant(), clientID, secret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: s.ClientOptions(), DisableInstanceDiscovery: true})
	if err != nil {
		t.Fatal(err)
	}
	return cred
}

// Token returns a raw access token of cred for scope (e.g.
// "https://management.azure.com/.default").
func (s *Server) Token(t testing.TB, cred azcore.TokenCredential, scope string) string {
	t.Helper()
	tok, err := cred.GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{scope}})
	if err != nil {
		t.Fatalf("get token for %s: %v", scope, err)
	}
	return tok.Token
}

// SelfSignedRSA makes a self-signed RSA certificate for cn, valid for a
// day (Entra takes RSA client certificates).
func SelfSignedRSA(t testing.TB, cn string) (*rsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, cert
}
