package accounts_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/accounts"
	"github.com/gatehouse/gatehouse/internal/teststore"
	"github.com/gatehouse/gatehouse/storage"
)

// TestDeploymentKeyVaultSecret: a Key Vault reference replaces a sealed
// key, both together are refused, the reference is checked, and the
// index carries it to the gateway.
func TestDeploymentKeyVaultSecret(t *testing.T) {
	teststore.Run(t, func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		w := teststore.NewWatcher(s)
		const ref = "https://kv.vault.gatehouse.test/secrets/llm-key"
		d := accounts.NewDeployments(context.Background(), s, w, accounts.DeploymentOptions{Sealer: sealer(t),
			ParseSecretReference: func(uri string) error {
				if !strings.HasPrefix(uri, "https://kv.vault.gatehouse.test/secrets/") {
					return errors.New("not ours")
				}
				return nil
			}})
		teststore.StartWatcher(t, w, d.Load)
		acct := &accounts.Account{ID: "/subscriptions/" + sub + "/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/oai",
			Name: "oai", Kind: "OpenAI", InternalID: "abc"}
		key := "sk-sealed"
		base := accounts.DeploymentSpec{Model: accounts.DeploymentModel{Name: "m"}, Endpoint: "http://127.0.0.1:8000"}

		// Without a managed identity nothing could read the secret.
		spec := base
		spec.KeyVaultSecret = ref
		if _, _, err := d.PutDeployment(ctx, acct, "chat", spec, me); err == nil || !strings.Contains(err.Error(), "InvalidUpstream") ||
			!strings.Contains(err.Error(), "no managed identity") {
			t.Fatalf("a reference without an identity: %v", err)
		}
		acct.Identity = &accounts.Identity{Type: accounts.IdentitySystemAssigned, System: &accounts.IdentityRef{PrincipalID: "11111111-1111-1111-1111-111111111111"}}

		spec = base
		spec.Key = &key
		if _, _, err := d.PutDeployment(ctx, acct, "chat", spec, me); err != nil {
			t.Fatal(err)
		}
		spec = base
		spec.KeyVaultSecret = ref
		dep, _, err := d.PutDeployment(ctx, acct, "chat", spec, me)
		if err != nil || dep.Upstream.HasKey || dep.Upstream.KeyVaultSecret != ref {
			t.Fatalf("reference replaces the key: %+v %v", dep, err)
		}
		if dp, ok := d.Lookup("abc", "chat"); !ok || dp.Key != "" || dp.KeyVaultSecret != ref {
			t.Fatalf("index: %+v", dp)
		}
		if objs := listKind(t, s, accounts.KindDeployment); len(objs) != 1 || len(objs[0].Sealed) != 0 {
			t.Fatal("the sealed key survives the reference")
		}

		for _, tt := range []struct {
			name string
			ref  string
			key  *string
		}{
			{"with-key", ref, &key},
			{"foreign", "https://kv.vault.azure.net/secrets/llm-key", nil},
			{"not-https", "http://kv.vault.gatehouse.test/secrets/llm-key", nil},
			{"not-a-url", "::", nil},
		} {
			t.Run(tt.name, func(t *testing.T) {
				spec := base
				spec.KeyVaultSecret, spec.Key = tt.ref, tt.key
				_, _, err := d.PutDeployment(ctx, acct, "chat", spec, me)
				if e, ok := gatehouse.AsError(err); !ok || e.Status != 400 || e.Code != "InvalidUpstream" ||
					e.Target != "properties.upstream.keyVaultSecret" {
					t.Fatalf("%v", err)
				}
			})
		}

		// A PUT without the reference (and without a key) leaves none.
		if dep, _, err := d.PutDeployment(ctx, acct, "chat", base, me); err != nil || dep.Upstream.KeyVaultSecret != "" || dep.Upstream.HasKey {
			t.Fatalf("replace without credential: %+v %v", dep, err)
		}
	})
}
