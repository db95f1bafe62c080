package gateway

import (
	"context"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/authority"
	"github.com/gatehouse/gatehouse/directory"
	"github.com/gatehouse/gatehouse/internal/teststore"
	"github.com/gatehouse/gatehouse/keyring"
)

// realVerifier is the app's adapter over the identity authority (as in
// cmd/gatehouse/internal/app/gateway.go), so the token benchmarks measure
// the real verifier: signature checks on a cold token, the verified-token
// cache on a warm one.
type realVerifier struct{ a *authority.Authority }

func (x realVerifier) VerifyToken(ctx context.Context, raw string, audiences ...string) (VerifiedToken, error) {
	c, err := x.a.Verify(ctx, raw, audiences...)
	if err != nil {
		return VerifiedToken{}, err
	}
	v := VerifiedToken{Audience: c.Audience, Principal: c.Principal, Expires: c.Expires}
	if acct := c.String(ClaimAccount); acct != "" {
		v.STS, v.AccountID, v.Slot = true, acct, -1
		if c.String(ClaimSlot) == "key1" {
			if gen, ok := c.Int64(ClaimGeneration); ok {
				v.Slot, v.Generation = 0, gen
			}
		}
	}
	return v, nil
}

func newRealAuthority(b *testing.B) *authority.Authority {
	b.Helper()
	ctx := context.Background()
	store := teststore.SQLite(b)
	k, err := keyring.Generate(rand.Reader, 1)
	if err != nil {
		b.Fatal(err)
	}
	kr, err := keyring.New([]keyring.Key{k}, keyring.Options{})
	if err != nil {
		b.Fatal(err)
	}
	w := teststore.NewWatcher(store)
	dir := directory.New(directory.Options{Store: store, Watcher: w})
	a, err := authority.New(authority.Options{Store: store, Watcher: w, Sealer: kr, Directory: dir, Host: "gw.test"})
	if err != nil {
		b.Fatal(err)
	}
	teststore.StartWatcher(b, w, dir.Load, func(ctx context.Context) error {
		_, _, err := dir.EnsureDefaultTenant(ctx)
		return err
	}, a.Start)
	_ = ctx
	return a
}

// BenchmarkAuthReal compares the three credential checks with the real
// token verifier: a key (hash + index), an STS token and an identity token
// (verified-token cache, claims, generation check or decision).
func BenchmarkAuthReal(b *testing.B) {
	a := newRealAuthority(b)
	w := newWorld(b, func(o *Options) { o.Tokens = realVerifier{a} })
	w.authz.grant("oid-1", routes[0].dataAction, acctID("acct1"))
	acct, _ := w.accounts.AccountByName("acct1")
	sts, _, err := a.Issue(context.Background(), gatehouse.Principal{}, STSAudience, 10*time.Minute,
		map[string]any{ClaimAccount: acct.ID, ClaimSlot: "key1", ClaimGeneration: 1})
	if err != nil {
		b.Fatal(err)
	}
	ident, _, err := a.Issue(context.Background(), gatehouse.Principal{Type: gatehouse.PrincipalServicePrincipal,
		ObjectID: "oid-1", ClientID: "cid"}, CognitiveAudience, time.Hour, nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct{ name, header, value string }{
		{"key", "Ocp-Apim-Subscription-Key", w.keys["acct1"][0]},
		{"sts-token", "Authorization", "Bearer " + sts},
		{"identity-token", "Authorization", "Bearer " + ident},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := httptest.NewRequest(http.MethodPost, "/ai/acct1"+langPath, nil)
			r.Header.Set(bc.header, bc.value)
			b.ReportAllocs()
			for b.Loop() {
				c, err := w.gw.authenticate(r, &acct, false)
				if err != nil {
					b.Fatal(err)
				}
				if c.kind == CredentialIdentity {
					if ok, _ := w.gw.opts.Authz.AuthorizeData(r.Context(), c.principal, routes[0].dataAction, acct.ID); !ok {
						b.Fatal("denied")
					}
				}
			}
		})
	}
}
