package cli

import (
	"bufio"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/spf13/cobra"
)

// cliClientID is the public client people sign in with (the Azure CLI's
// well-known id, which the authority accepts for the password grant).
const cliClientID = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"

func newLoginCmd(env Env) *cobra.Command {
	var (
		server, caFile, tenant, user, pass, cert, bootstrap string
		sp, passStdin, deviceCode                           bool
	)
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Sign in to a Gatehouse server as a service principal or a person",
		Long: `Sign in to a Gatehouse server and store the profile (server, CA, tenant,
credential) in $GATEHOUSE_CONFIG_DIR/profile.json (default ~/.gatehouse), mode 0600.

  gatehouse login --server https://localhost:8443 --ca-file ca.pem \
      --service-principal -u CLIENT_ID -p SECRET          # a service principal (secret)
  gatehouse login ... --service-principal -u CLIENT_ID --certificate sp.pem   # (certificate + key PEM)
  gatehouse login ... -u alice@example.test -p PASSWORD   # a person (password sign-in)
  gatehouse login ... --use-device-code                   # a person, approving in a browser
  gatehouse login --bootstrap-file bootstrap.json         # the bootstrap service principal

A service principal's secret is stored (as az does); a person's password is
not: their session is (a refresh token the server rotates at every use, good
for 14 days unused and 90 days at most), and they sign in again when it ends
or is revoked (a password change, ` + "`gatehouse logout --revoke`" + `, an
administrator's revokeSignInSessions).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case bootstrap != "" && (user != "" || pass != "" || passStdin || sp || deviceCode):
				return errors.New("--bootstrap-file takes no -u, -p, --password-stdin, --service-principal or --use-device-code: the file has the credentials")
			case pass != "" && passStdin:
				return errors.New("give -p/--password or --password-stdin, not both")
			case cert != "" && (pass != "" || passStdin):
				return errors.New("give a secret (-p/--password-stdin) or --certificate, not both")
			}
			p := &profile{Server: server, CAFile: caFile, TenantID: tenant}
			if bootstrap != "" {
				var b struct {
					TenantID      string `json:"tenantId"`
					ClientID      string `json:"clientId"`
					ClientSecret  string `json:"clientSecret"`
					AuthorityHost string `json:"authorityHost"`
					CAFile        string `json:"caFile"`
				}
				data, err := os.ReadFile(bootstrap)
				if err != nil {
					return fmt.Errorf("--bootstrap-file: %w", err)
				}
				if err := json.Unmarshal(data, &b); err != nil {
					return fmt.Errorf("--bootstrap-file: %s is not the JSON file serve --bootstrap-file writes: %v", bootstrap, err)
				}
				caFile = firstNonEmpty(caFile, b.CAFile) // for caHint too
				p.Server, p.CAFile, p.TenantID = firstNonEmpty(server, b.AuthorityHost), caFile, b.TenantID
				sp, user, pass = true, b.ClientID, b.ClientSecret
			}
			if passStdin {
				var err error
				if pass, err = readPasswordStdin(cmd); err != nil {
					return err
				}
			}
			if p.Server == "" {
				return errors.New("--server is required (or GATEHOUSE_SERVER)")
			}
			// The profile serves every later command, from any directory:
			// the files it names are kept as absolute paths.
			if p.CAFile != "" {
				abs, err := filepath.Abs(p.CAFile)
				if err != nil {
					return fmt.Errorf("--ca-file: %w", err)
				}
				p.CAFile = abs
			}
			u, err := url.Parse(p.Server)
			if err != nil || u.Scheme != "https" || u.Host == "" {
				return fmt.Errorf("--server %q must be an https URL", p.Server)
			}
			p.Server = "https://" + u.Host
			if p.TenantID == "" {
				p.TenantID = "adfs"
			}
			if deviceCode && (sp || user != "" || pass != "") {
				return errors.New("--use-device-code signs a person in from a browser: it takes no -u, -p or --service-principal")
			}
			if user == "" && !deviceCode {
				return errors.New("-u/--username is required (a client id with --service-principal, else a user name; or --use-device-code)")
			}
			hc, err := p.httpClient()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			p.PublicHost = publicHost(ctx, hc, p.Server, u.Host)
			if sp {
				p.Kind, p.ClientID = kindServicePrincipal, user
				switch {
				case cert != "":
					if p.CertificateFile, err = filepath.Abs(cert); err != nil {
						return fmt.Errorf("--certificate: %w", err)
					}
				case pass != "":
					p.ClientSecret = pass
				default:
					return errors.New("a service principal needs -p/--password (its secret) or --certificate")
				}
				if _, _, err := p.clientCredentials(ctx, hc, resourceManagement); err != nil {
					return err
				}
			} else if deviceCode {
				tr, name, err := p.deviceCodeSignIn(ctx, hc, env)
				if err != nil {
					return err
				}
				p.Kind, p.UserName, p.env = kindUser, name, env
				p.Tokens = map[string]cachedToken{resourceManagement: {AccessToken: tr.AccessToken, ExpiresOn: tr.ExpiresOn}}
				p.RefreshToken = tr.RefreshToken
			} else {
				if pass == "" {
					return errors.New("-p/--password or --password-stdin is required")
				}
				// One password sign-in starts a session (offline_access): its
				// refresh token gets every other resource's token later
				// (session.go). A server that answers without one gets the
				// password once per resource, as before.
				p.Kind, p.UserName, p.Tokens, p.env = kindUser, user, map[string]cachedToken{}, env
				for _, res := range []string{resourceManagement, resourceGraph} {
					form := url.Values{"grant_type": {"password"}, "client_id": {cliClientID}, "username": {user},
						"password": {pass}, "scope": {strings.TrimRight(res, "/") + "/.default offline_access"}}
					tr, err := postTokenRequest(ctx, hc, p.tokenEndpoint(), form)
					if err != nil {
						return err
					}
					p.Tokens[res] = cachedToken{AccessToken: tr.AccessToken, ExpiresOn: tr.ExpiresOn}
					if tr.RefreshToken != "" {
						p.RefreshToken = tr.RefreshToken
						break
					}
				}
			}
			// The default subscription, when the management API lists one.
			client := &apiClient{Profile: p, base: p.Server, resource: resourceManagement, http: hc, env: env}
			client.findSubscription(ctx)
			if err := p.save(env); err != nil {
				return err
			}
			name, typ := p.ClientID, "servicePrincipal"
			if p.Kind == kindUser {
				name, typ = p.UserName, "user"
			}
			if p.SubscriptionID == "" {
				// As az says "No subscriptions found": without a role in
				// one, management commands need --subscription (once a role
				// is granted, the next command finds it: newClientFor).
				fmt.Fprintf(env.Stderr, "No subscriptions found for %s: it holds no role at a subscription or within one yet.\n", name)
			}
			return printOutput(cmd, env.Stdout, []map[string]any{{
				"cloudName": "Gatehouse", "server": p.Server, "tenantId": p.TenantID, "id": p.SubscriptionID,
				"isDefault": true, "user": map[string]string{"name": name, "type": typ},
			}})
		},
	}
	lookup := func(k string) string { v, _ := env.LookupEnv(k); return v }
	f := cmd.Flags()
	f.StringVar(&server, "server", lookup("GATEHOUSE_SERVER"), "server URL, https://H ($GATEHOUSE_SERVER)")
	f.StringVar(&caFile, "ca-file", "", "CA certificate to trust (default: the system roots)")
	f.StringVarP(&tenant, "tenant", "t", "", "tenant id (default: the server's default tenant)")
	f.BoolVar(&sp, "service-principal", false, "sign in as a service principal")
	f.StringVarP(&user, "username", "u", "", "client id (service principal) or user name (person)")
	f.StringVarP(&pass, "password", "p", "", "client secret or password")
	f.BoolVar(&passStdin, "password-stdin", false, "read the secret or password from standard input")
	f.StringVar(&cert, "certificate", "", "PEM file with the service principal's certificate and private key")
	f.StringVar(&bootstrap, "bootstrap-file", "", "sign in with the credentials of a --bootstrap-file")
	f.BoolVar(&deviceCode, "use-device-code", false, "sign a person in by approving a code in a browser (the portal's device page)")
	addOutputFlags(cmd)
	signIn := cmd.RunE
	cmd.RunE = func(cmd *cobra.Command, args []string) error { return caHint(signIn(cmd, args), caFile) }
	return cmd
}

// caHint says what to do about an error whose cause is a server
// certificate from a CA this machine does not trust: Gatehouse's own CA is
// private, so the first login needs its certificate. caFile is the
// --ca-file given, if any.
func caHint(err error, caFile string) error {
	if _, ok := errors.AsType[x509.UnknownAuthorityError](err); !ok {
		return err
	}
	if caFile == "" {
		return fmt.Errorf("%w; pass --ca-file with the server's CA certificate (ca.pem in its data directory, e.g. gatehouse-data/ca.pem: serve prints its path)", err)
	}
	return fmt.Errorf("%w; %s is not the CA of this server's certificate: pass its ca.pem (in its data directory: serve prints its path)", err, caFile)
}

func newLogoutCmd(env Env) *cobra.Command {
	var revoke bool
	cmd := &cobra.Command{
		Use:   "logout",
		Short: "Forget the stored profile and its credential",
		Long: `Forget the stored profile and its credential. With --revoke, a person first
ends every session they have on the server (Graph's revokeSignInSessions): the
refresh tokens of this and every other machine stop working.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := profilePath(env)
			if err != nil {
				return err
			}
			if revoke {
				c, err := newGraphClient(cmd, env)
				if err != nil {
					return err
				}
				if c.Profile.Kind != kindUser {
					return errors.New("--revoke ends a person's sessions; this profile is a service principal's")
				}
				err = c.Do(cmd.Context(), "POST", "/v1.0/me/revokeSignInSessions", nil, nil)
				switch {
				case errors.Is(err, errSessionEnded):
					// Nothing of this machine's is left to revoke: forget the
					// profile, and say that other sessions live on.
					fmt.Fprintf(env.Stderr, "The session of %s had already ended here, so no session was revoked; to end those of other machines, sign in and run logout --revoke again.\n", c.Profile.UserName)
				case err != nil:
					return err
				}
			}
			if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&revoke, "revoke", false, "end every session of the signed-in person on the server first")
	return cmd
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// certificateAssertion signs a client assertion (PS256, x5t#S256, aud = the
// token endpoint, 10 minutes) with the certificate and RSA key in pemFile.
func certificateAssertion(pemFile, clientID, endpoint string) (string, error) {
	data, err := os.ReadFile(pemFile)
	if err != nil {
		return "", err
	}
	var cert *x509.Certificate
	var key *rsa.PrivateKey
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		switch b.Type {
		case "CERTIFICATE":
			if cert == nil {
				cert, _ = x509.ParseCertificate(b.Bytes)
			}
		case "PRIVATE KEY":
			if k, err := x509.ParsePKCS8PrivateKey(b.Bytes); err == nil {
				key, _ = k.(*rsa.PrivateKey)
			}
		case "RSA PRIVATE KEY":
			key, _ = x509.ParsePKCS1PrivateKey(b.Bytes)
		}
	}
	if cert == nil || key == nil {
		return "", fmt.Errorf("%s must hold a certificate and its RSA private key (PEM)", pemFile)
	}
	sum := sha256.Sum256(cert.Raw)
	enc := base64.RawURLEncoding
	h, _ := json.Marshal(map[string]string{"alg": "PS256", "typ": "JWT", "x5t#S256": enc.EncodeToString(sum[:])})
	now := time.Now()
	c, _ := json.Marshal(map[string]any{"aud": endpoint, "iss": clientID, "sub": clientID, "jti": gatehouse.NewGUID(),
		"nbf": now.Unix(), "iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()})
	input := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
	digest := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPSS(rand.Reader, key, crypto.SHA256, digest[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	if err != nil {
		return "", err
	}
	return input + "." + enc.EncodeToString(sig), nil
}

// readPasswordStdin reads a password (or secret) from the first line of
// standard input, for --password-stdin: a flag's value would show in the
// process list and the shell's history.
func readPasswordStdin(cmd *cobra.Command) (string, error) {
	line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
	if err != nil && line == "" {
		return "", errors.New("--password-stdin: nothing to read")
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// publicHost asks the authority's metadata for the server's public host
// (serve --host), "" when it is host — the one the login was given — or
// unknown: a login to https://127.0.0.1:8443 of a server whose host is
// localhost:8443 names vaults {vault}.vault.localhost:8443.
func publicHost(ctx context.Context, hc *http.Client, server, host string) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, server+"/adfs/.well-known/openid-configuration", nil)
	if err != nil {
		return ""
	}
	resp, err := hc.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var meta struct {
		TokenEndpoint string `json:"token_endpoint"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&meta) != nil {
		return ""
	}
	u, err := url.Parse(meta.TokenEndpoint)
	if err != nil || u.Host == "" || strings.EqualFold(u.Host, host) {
		return ""
	}
	return u.Host
}
