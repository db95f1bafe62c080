package armtest

import (
	"io"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/cli"
)

// TestCLISweep runs every command of the gatehouse CLI that talks to a
// server, signed in as the bootstrap principal, with no arguments and only
// --subscription: a command that needs more must say so and send nothing
// that changes state (an earlier `ad user delete` without --id addressed
// the users collection). Afterwards the store's revision is what it was:
// no command wrote anything. It also runs each with a bogus positional
// argument, which every one of them refuses.
func TestCLISweep(t *testing.T) {
	e := newEnv(t)
	c := &cliRunner{dir: t.TempDir()}
	c.mustRun(t, "login", "--server", e.URL, "--ca-file", e.CAFile, "--tenant", e.Directory.DefaultTenant(),
		"--service-principal", "-u", e.Bootstrap.ClientID, "-p", e.Bootstrap.ClientSecret)

	// Commands that run with no flags by design and are left out: the node
	// itself, the local keyring and profile, `run` (starts a process), and
	// elevate-access (acts on the signed-in principal, tested in
	// TestElevateAccess).
	skip := map[string]bool{
		"gatehouse serve": true, "gatehouse keyring": true, "gatehouse login": true, "gatehouse logout": true,
		"gatehouse run": true, "gatehouse version": true, "gatehouse completion": true, "gatehouse help": true,
		"gatehouse role elevate-access": true,
	}
	var leaves []*cobra.Command
	var walk func(*cobra.Command)
	walk = func(cmd *cobra.Command) {
		if skip[cmd.CommandPath()] {
			return
		}
		if !cmd.HasSubCommands() {
			leaves = append(leaves, cmd)
			return
		}
		for _, sub := range cmd.Commands() {
			walk(sub)
		}
	}
	walk(cli.NewRoot(cli.Env{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard,
		LookupEnv: func(string) (string, bool) { return "", false }}))
	if len(leaves) < 40 {
		t.Fatalf("found %d commands: the walk is broken", len(leaves))
	}

	before, err := e.Store.Revision(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	mutating := 0
	for _, cmd := range leaves {
		path := strings.Fields(cmd.CommandPath())[1:]
		args := append([]string(nil), path...)
		if cmd.Flags().Lookup("subscription") != nil {
			args = append(args, "--subscription", e.sub)
		}
		name := strings.Join(path, " ")
		t.Run(name, func(t *testing.T) {
			code, out, errOut := c.run(t, "", args...)
			if isMutating(path[len(path)-1]) {
				mutating++
				if code == 0 {
					t.Errorf("gatehouse %s with no flags succeeded: %s", name, clip(out))
				} else if !strings.Contains(errOut, "--") && !strings.Contains(errOut, "required flag") {
					t.Errorf("gatehouse %s with no flags: exit %d, stderr %q: want the missing flag named", name, code, clip(errOut))
				}
			}
			if strings.Contains(errOut, "panic") || strings.Contains(errOut, "goroutine ") {
				t.Errorf("gatehouse %s: %s", name, clip(errOut))
			}
			// A stray positional argument is refused, never taken for a name.
			code, _, errOut = c.run(t, "", append(append([]string(nil), args...), "stray")...)
			if code == 0 {
				t.Errorf("gatehouse %s stray: exit 0, want the argument refused", name)
			} else if !strings.Contains(errOut, "stray") && !strings.Contains(errOut, "arg") {
				t.Errorf("gatehouse %s stray: stderr %q does not say what was wrong", name, clip(errOut))
			}
		})
	}
	if mutating < 20 {
		t.Fatalf("only %d mutating commands found", mutating)
	}
	after, err := e.Store.Revision(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Errorf("the store changed (revision %d → %d): a command without its flags wrote something", before, after)
	}
	e.AssertNotLogged(t, e.Bootstrap.ClientSecret)
}

// isMutating reports whether a command's verb changes state.
func isMutating(verb string) bool {
	switch verb {
	case "create", "delete", "update", "set", "regenerate", "renew", "reset", "purge", "recover", "restore",
		"backup", "add", "remove", "revoke", "disable", "enable", "assign", "issue", "download":
		return true
	}
	return false
}

func clip(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}
