package armtest

import (
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/cognitiveservices/armcognitiveservices/v2"
	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/testenv"
	"github.com/gatehouse/gatehouse/storage/postgres/pgtest"
)

// BenchmarkKeys measures listKeys and regenerateKey through the official
// SDK client against a real node over TLS, on each backend, next to a GET
// of the same account as the baseline (same client, TLS, authentication
// and authorization; no key material, no write).
func BenchmarkKeys(b *testing.B) {
	backends := []struct {
		name string
		opts func(b *testing.B) []testenv.Option
	}{
		{"sqlite", func(*testing.B) []testenv.Option { return nil }},
		{"postgres", func(b *testing.B) []testenv.Option { return []testenv.Option{testenv.WithPostgres(pgtest.DSN(b))} }},
	}
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			e := newEnv(b, be.opts(b)...)
			group := e.createGroup(b, "bench")
			createAccount(b, e, group, "bench-acct", "OpenAI")
			ctx := b.Context()
			b.Run("get-account-baseline", func(b *testing.B) {
				for b.Loop() {
					if _, err := e.accounts.Get(ctx, group, "bench-acct", nil); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("list-keys", func(b *testing.B) {
				for b.Loop() {
					if _, err := e.accounts.ListKeys(ctx, group, "bench-acct", nil); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("regenerate-key", func(b *testing.B) {
				params := armcognitiveservices.RegenerateKeyParameters{KeyName: ptr(armcognitiveservices.KeyNameKey1)}
				for b.Loop() {
					if _, err := e.accounts.RegenerateKey(ctx, group, "bench-acct", params, nil); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
