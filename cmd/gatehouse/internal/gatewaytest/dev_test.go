package gatewaytest

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/accounts"
	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/app"
	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/testenv"
)

// TestDevMode is the README's first run: `gatehouse serve --dev` prints a
// curl line that gets a real answer from the built-in Language service —
// on the first start, on the next, and after the demo account was deleted
// (it is recovered, with the same key).
func TestDevMode(t *testing.T) {
	dir := t.TempDir()
	dev := testenv.WithConfig(func(c *app.Config) { c.Dev = true })
	var key string
	for _, start := range []string{"first-start", "restart", "after-delete"} {
		t.Run(start, func(t *testing.T) {
			s := testenv.Start(t, dev, testenv.WithDataDir(dir))
			banner := s.Banner.String()
			i := strings.Index(banner, "  curl ")
			if i < 0 || !strings.Contains(banner, "demo-language") || !strings.Contains(banner, "endpoint: "+s.URL+"/ai/demo-language/") {
				t.Fatalf("banner has no demo account and curl line:\n%s", banner)
			}
			// The curl command spans three lines joined by backslashes.
			cmdLine := strings.Join(strings.SplitN(banner[i:], "\n", 4)[:3], "\n")
			k := strings.TrimSpace(strings.SplitN(banner[strings.Index(banner, "key:")+4:], "\n", 2)[0])
			if key != "" && k != key {
				t.Errorf("the demo key changed at the %s", start)
			}
			key = k
			if _, err := exec.LookPath("curl"); err != nil {
				t.Skip("curl is not installed")
			}
			out, err := exec.CommandContext(t.Context(), "bash", "-c", cmdLine+" --silent --show-error").CombinedOutput()
			if err != nil {
				t.Fatalf("%s\n%v: %s", cmdLine, err, out)
			}
			var res struct {
				Kind    string
				Results struct {
					Documents []struct{ Sentiment string }
				}
			}
			if err := json.Unmarshal(out, &res); err != nil || res.Kind != "SentimentAnalysisResults" ||
				len(res.Results.Documents) != 1 || res.Results.Documents[0].Sentiment != "positive" {
				t.Errorf("curl answer %s (%v)", out, err)
			}
			// What the start-up steps did is in the audit log, once: the
			// bootstrap principal, its Owner assignment and the demo
			// account on the first start, the recovery after the delete.
			var startup []string
			err = s.Audit.Each(t.Context(), 0, func(r *audit.Record) error {
				if r.Entry.Surface == "serve" {
					startup = append(startup, r.Entry.Action+" "+r.Entry.Details["restore"])
				}
				return nil
			})
			want := []string{"microsoft.directory/servicePrincipals/create ", "Microsoft.Authorization/roleAssignments/write ",
				"Microsoft.CognitiveServices/accounts/write "}
			if start == "after-delete" {
				want = append(want, "Microsoft.CognitiveServices/accounts/write true")
			}
			if err != nil || strings.Join(startup, ",") != strings.Join(want, ",") {
				t.Errorf("start-up audit entries %q (%v), want %q", startup, err, want)
			}
			if start == "restart" {
				acct, ok := s.Accounts.ByDataPlaneName("demo-language")
				if !ok {
					t.Fatal("no demo account")
				}
				id, _ := accounts.ParseID(acct.ID)
				if ok, err := s.Accounts.Delete(t.Context(), id); !ok || err != nil {
					t.Fatalf("delete the demo account: %v %v", ok, err)
				}
			}
			s.Close()
		})
	}
}
