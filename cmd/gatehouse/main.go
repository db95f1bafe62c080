// Command gatehouse is Gatehouse's one binary: `gatehouse serve` runs a node;
// the other commands manage one. See `gatehouse --help`.
package main

import (
	"context"
	"os"

	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/cli"
)

func main() {
	os.Exit(cli.Main(context.Background(), os.Args[1:], cli.Env{
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, LookupEnv: os.LookupEnv,
	}))
}
