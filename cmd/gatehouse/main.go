// Command gatehouse is Gatehouse's one binary: `gatehouse serve` runs a node;
// the other commands manage one. See `gatehouse --help`.
package main

import (
	"context"
	"os"
	"runtime/debug"

	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/cli"
)

// defaultGCPercent replaces Go's GOGC=100 when GOGC is not set. A node's
// live heap is small (indexes, caches, connection buffers: tens of MB) and
// the data plane allocates a little per request, so at 100 the collector
// runs every few milliseconds under load; at 400 it runs a quarter as often
// for a heap at most five times the live one. Measured with bench/gateway.sh
// (key path): see the gateway's doc.go. GOGC (and GOMEMLIMIT) in the
// environment still win.
const defaultGCPercent = 400

func main() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(defaultGCPercent)
	}
	os.Exit(cli.Main(context.Background(), os.Args[1:], cli.Env{
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, LookupEnv: os.LookupEnv,
	}))
}
