package cli

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/app"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Settings of the operators' tools that read the store directly: where
// the store is, and the master key for those that open sealed values.
var (
	storeSettings = []string{"data-dir", "postgres"}
	keySettings   = []string{"data-dir", "postgres", "master-key-file"}
)

// addConfigFlags defines --config and one flag per config field — only
// those named in only, when given: a tool shows the flags it uses. The
// environment and the config file may still set any field.
func addConfigFlags(fs *pflag.FlagSet, only ...string) {
	fs.String("config", "", "YAML config file (keys are the flag names)")
	for _, f := range app.Fields() {
		if len(only) > 0 && !slices.Contains(only, f.Name) {
			continue
		}
		if f.Bool {
			// Parsed by loadConfig with the rest, so that --dev=maybe is
			// one problem of the list, as GATEHOUSE_DEV=maybe is.
			v := boolSetting(f.Default)
			fs.Var(&v, f.Name, f.Help+" ($"+f.Env+")")
			fs.Lookup(f.Name).NoOptDefVal = "true"
		} else {
			fs.String(f.Name, f.Default, f.Help+" ($"+f.Env+")")
		}
	}
}

// boolSetting is an on/off setting's flag: --name alone is true, and any
// --name=value is kept as given for app.Config.Set to judge.
type boolSetting string

func (b *boolSetting) Set(s string) error { *b = boolSetting(s); return nil }
func (b *boolSetting) String() string     { return string(*b) }
func (b *boolSetting) Type() string       { return "bool" }
func (b *boolSetting) IsBoolFlag() bool   { return true }

// loadConfig layers defaults < config file < environment < flags set on the
// command line, and reports every problem at once (app.Config.Check): a
// value that does not parse does not hide the others, nor what Validate
// finds in the rest. Flags of the command's own (backup's --file) are not
// settings and are left to it.
func loadConfig(fs *pflag.FlagSet, env Env) (app.Config, error) {
	settings := map[string]bool{}
	for _, f := range app.Fields() {
		settings[f.Name] = true
	}
	cfg := app.DefaultConfig()
	var errs []error
	path, _ := fs.GetString("config")
	if path == "" {
		if p, ok := env.LookupEnv("GATEHOUSE_CONFIG"); ok {
			path = p
		}
	}
	if path != "" {
		errs = append(errs, cfg.LoadFile(path))
	}
	errs = append(errs, cfg.ApplyEnv(env.LookupEnv))
	fs.Visit(func(f *pflag.Flag) {
		if settings[f.Name] {
			errs = append(errs, cfg.Set(f.Name, f.Value.String()))
		}
	})
	return cfg, cfg.Check(errs...)
}

func newServeCmd(env Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a Gatehouse node",
		Long: `Run a Gatehouse node: the identity authority, the management API, the STS,
the AI gateway and the managed-identity endpoint, on one TLS listener routed by Host.

Settings come from flags, then GATEHOUSE_* environment variables, then the
--config file, then defaults.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			// A worker of a node run with --workers takes worker 0's
			// configuration, not its own flags and environment.
			var spec *app.WorkerSpec
			var cfg app.Config
			var err error
			if app.IsWorker(env.LookupEnv) {
				if spec, err = app.ReadWorkerSpec(); err != nil {
					return err
				}
				cfg = spec.Config
			} else if cfg, err = loadConfig(cmd.Flags(), env); err != nil {
				return err
			}
			if _, set := env.LookupEnv("GOMAXPROCS"); !set && spec == nil && cfg.Workers > 1 {
				runtime.GOMAXPROCS(app.WorkerProcs(cfg.Workers)) // the workers get theirs from worker 0
			}
			if path, _ := cmd.Flags().GetString("cpu-profile"); path != "" {
				stopProfile, err := startCPUProfile(path)
				if err != nil {
					return err
				}
				defer stopProfile()
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			m := app.NewMain()
			m.Config = cfg
			m.Stdout = env.Stdout
			m.Logger = app.NewLogger(env.Stderr, cfg.LogFormat, cfg.LogLevel)
			if spec != nil {
				m.Worker = spec
				m.Logger = m.Logger.With("worker", spec.Index)
				m.Stdout = io.Discard // worker 0 printed the banner
			}
			if err := m.Run(ctx); err != nil {
				return err
			}
			var workers *app.Supervisor
			if spec == nil && cfg.Workers > 1 {
				if workers, err = m.StartWorkers(env.Stderr); err != nil {
					m.Close()
					return err
				}
			}
			// SIGHUP reads the model catalog (--models) again.
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			go func() {
				for {
					select {
					case <-ctx.Done():
						return
					case <-hup:
						if workers != nil {
							workers.Signal(syscall.SIGHUP)
						}
						if err := m.ReloadModels(ctx); err != nil {
							m.Logger.Error("the model catalog was not reloaded; the previous one stays", "err", err)
						}
					}
				}
			}()
			done := make(chan error, 1)
			go func() { done <- m.Wait() }()
			select {
			case <-ctx.Done():
				m.Logger.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
			case err := <-done:
				if err != nil {
					if workers != nil {
						workers.Stop()
					}
					m.Close()
					return fmt.Errorf("serve: %w", err)
				}
			}
			start := time.Now()
			// The workers shut down (gracefully, each within its timeout)
			// while this one does.
			workersDone := make(chan struct{})
			go func() {
				if workers != nil {
					workers.Stop()
				}
				close(workersDone)
			}()
			err = m.Close()
			<-workersDone
			m.Logger.Info("stopped", "took", time.Since(start).Round(time.Millisecond).String())
			return err
		},
	}
	addConfigFlags(cmd.Flags())
	cmd.Flags().String("cpu-profile", "", "write a CPU profile (pprof) of the node's whole run to this file when it stops: to look into its costs, or to renew cmd/gatehouse/default.pgo, the profile Go builds the binary with (bench/gateway.sh --pgo)")
	return cmd
}

// startCPUProfile profiles the process into a new file at path until the
// returned function is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("--cpu-profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpu-profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
