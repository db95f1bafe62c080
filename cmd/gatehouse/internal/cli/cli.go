// Package cli is the gatehouse command tree (cobra): `serve` runs a node,
// the other groups are clients of a running node or tools on its data.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Version is set at build time with -ldflags "-X .../cli.Version=v1.2.3".
var Version = "dev"

// Env is what a command may touch of its process; tests substitute it.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	LookupEnv      func(string) (string, bool)
}

// Main runs the command line and returns the process exit code.
func Main(ctx context.Context, args []string, env Env) int {
	root := NewRoot(env)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		fmt.Fprintln(env.Stderr, "gatehouse:", err)
		return 1
	}
	return 0
}

type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// NewRoot returns the root command.
func NewRoot(env Env) *cobra.Command {
	if env.LookupEnv == nil {
		env.LookupEnv = os.LookupEnv
	}
	root := &cobra.Command{
		Use:           "gatehouse",
		Short:         "Gatehouse: an Azure-compatible access layer for AI services",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.Version = version() // --version, as the version command
	root.SetVersionTemplate("gatehouse {{.Version}}\n")
	root.SetIn(env.Stdin)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	root.AddCommand(newVersionCmd(env), newServeCmd(env), newKeyringCmd(env))
	root.AddCommand(newLoginCmd(env), newLogoutCmd(env), newADCmd(env), newIdentityCmd(env), newRunCmd(env))
	root.AddCommand(newCognitiveServicesCmd(env), newGroupCmd(env), newRoleCmd(env))
	root.AddCommand(newSTSCmd(env))                        // sts.go
	root.AddCommand(newKeyVaultCmd(env))                   // keyvault.go
	root.AddCommand(newAuditCmd(env))                      // audit.go
	root.AddCommand(newLockCmd(env))                       // lock.go
	root.AddCommand(newTagCmd(env))                        // tag.go
	root.AddCommand(newBackupCmd(env), newRestoreCmd(env)) // backup.go
	return root
}

func newVersionCmd(env Env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprintln(env.Stdout, "gatehouse", version())
			return nil
		},
	}
}

// version is Version, with the Go version of a development build.
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && Version == "dev" {
		return "dev (" + bi.GoVersion + ")"
	}
	return Version
}
