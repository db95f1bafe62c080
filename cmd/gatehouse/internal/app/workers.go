package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// Workers (--workers N) run one node as N processes on one port: worker 0
// is the process an operator starts, and it starts workers 1…N-1 as
// children of its own binary. Each is a node of the cluster the
// PostgreSQL database holds (DESIGN.md §5): its own in-memory indexes kept
// current by LISTEN/NOTIFY, its own rate limits and deployment quotas (per
// node, as behind a load balancer), its usage added to the others' in the
// store. They share the listening port with SO_REUSEPORT, so the kernel
// spreads new connections over them, and each runs GOMAXPROCS cores/N.
//
// Why: a Go process on two cores spends a tenth of a proxied request's CPU
// in the scheduler (waking and spinning threads, goroutines moving between
// the cores' caches). Two processes of one P each do not, as nginx's
// workers do not: in bench/gateway.sh --dataplane on 2 cores (December
// 2026), two workers served 1.12× the requests of one process, 0.99× of
// nginx behind TLS. See gateway/doc.go.
//
// What a worker shares: the store, the master key (worker 0's key source),
// the CA (in the store) and both ports. What it has of its own: a data
// directory under the first's (workers/{i}: its lock and TLS certificate),
// and a metrics socket there, which every worker's /metrics reads so that a
// scrape of the port sees all workers (labelled worker="i") whichever
// worker answers it.
//
// Worker 0 restarts a worker that exits (after 1 s, doubling to 30 s while
// it keeps failing); the children get SIGTERM when worker 0 stops, and die
// with it if it is killed (Linux's parent-death signal).

// workerEnv marks a worker process: its value is the index, and the spec
// comes on file descriptor 3, not in the environment, since the
// configuration holds the PostgreSQL DSN.
const workerEnv = "GATEHOUSE_WORKER"

// MaxWorkers bounds --workers.
const MaxWorkers = 64

// WorkerSpec is what worker 0 hands a worker: the configuration to run
// with (worker 0's, ports resolved) and where it stands among the workers.
type WorkerSpec struct {
	Index  int    `json:"index"`
	Config Config `json:"config"`
	// Root is worker 0's data directory: the workers' directories and
	// metrics sockets are under it.
	Root string `json:"root"`
}

// IsWorker reports whether this process was started as a worker (1…N-1).
func IsWorker(lookup func(string) (string, bool)) bool {
	_, ok := lookup(workerEnv)
	return ok
}

// ReadWorkerSpec reads a worker's spec from file descriptor 3.
func ReadWorkerSpec() (*WorkerSpec, error) {
	f := os.NewFile(3, "worker-spec")
	if f == nil {
		return nil, errors.New("worker: no spec on file descriptor 3")
	}
	defer f.Close()
	var spec WorkerSpec
	if err := json.NewDecoder(io.LimitReader(f, 1<<20)).Decode(&spec); err != nil {
		return nil, fmt.Errorf("worker: reading the spec: %w", err)
	}
	if spec.Index < 1 || spec.Index >= spec.Config.Workers || spec.Root == "" {
		return nil, fmt.Errorf("worker: spec of worker %d of %d", spec.Index, spec.Config.Workers)
	}
	return &spec, nil
}

// WorkerProcs is how many cores (GOMAXPROCS) each of n workers gets on
// this machine: an even share, at least one.
func WorkerProcs(n int) int {
	return max(1, runtime.NumCPU()/max(n, 1))
}

// workerDir is worker i's data directory under root (worker 0's own).
func workerDir(root string, i int) string {
	if i == 0 {
		return root
	}
	return filepath.Join(root, "workers", strconv.Itoa(i))
}

// metricsSocket is where worker i serves its metrics to the others.
func metricsSocket(root string, i int) string {
	return filepath.Join(root, "workers", "metrics-"+strconv.Itoa(i)+".sock")
}

// reusePort is a net.ListenConfig that sets SO_REUSEPORT, so that every
// worker binds the same address.
func reusePort() net.ListenConfig {
	return net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) { serr = setReusePort(fd) }); err != nil {
			return err
		}
		return serr
	}}
}

// listenTCP listens on addr, sharing it with the other workers when there
// are any.
func (m *Main) listenTCP(addr string) (net.Listener, error) {
	if m.Config.Workers <= 1 {
		return net.Listen("tcp", addr)
	}
	lc := reusePort()
	return lc.Listen(context.Background(), "tcp", addr)
}

// workerIndex is this process's index among the workers (0 for worker 0
// and for a node without workers).
func (m *Main) workerIndex() int {
	if m.Worker == nil {
		return 0
	}
	return m.Worker.Index
}

// workerRoot is worker 0's data directory.
func (m *Main) workerRoot() string {
	if m.Worker == nil {
		return m.Config.DataDir
	}
	return m.Worker.Root
}

// startWorkerMetrics makes /metrics every worker's: this worker's samples,
// labelled with its index, are served on its socket, and its /metrics
// gathers them with the other workers'.
func (m *Main) startWorkerMetrics() error {
	root, self := m.workerRoot(), m.workerIndex()
	own := labelled{g: m.Metrics.Registry, name: "worker", value: strconv.Itoa(self)}
	path := metricsSocket(root, self)
	if len(path) >= 104 { // sun_path, less its terminator, on every Unix
		return fmt.Errorf("workers: the metrics socket's path %s is too long for a Unix socket; choose a shorter --data-dir", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("workers: %w", unwrapSyscall(err))
	}
	os.Remove(path) // a previous run's
	ln, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("workers: metrics socket: %w", unwrapSyscall(err))
	}
	srv := &http.Server{Handler: promhttp.HandlerFor(own, promhttp.HandlerOpts{}), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(m.Logger.Handler(), slog.LevelDebug)}
	go srv.Serve(ln)
	m.closers = append(m.closers, func() { srv.Close(); os.Remove(path) })

	all := prometheus.Gatherers{own}
	up := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "gatehouse_worker_up",
		Help: "Whether a worker answered this scrape (1) or not (0: starting, restarting or stuck)."}, []string{"worker"})
	up.WithLabelValues(strconv.Itoa(self)).Set(1)
	for i := range m.Config.Workers {
		if i != self {
			all = append(all, &peerMetrics{path: metricsSocket(root, i), up: up.WithLabelValues(strconv.Itoa(i)), log: m.Logger})
		}
	}
	// Gatherers runs in order: the peers set up's values before it is read.
	m.Metrics.Gatherer = append(all, gatherOf(up))
	return nil
}

// labelled adds the label name=value to every sample g gathers.
type labelled struct {
	g           prometheus.Gatherer
	name, value string
}

func (l labelled) Gather() ([]*dto.MetricFamily, error) {
	mfs, err := l.g.Gather()
	for _, mf := range mfs {
		for _, mt := range mf.Metric {
			mt.Label = append(mt.Label, &dto.LabelPair{Name: &l.name, Value: &l.value})
			slices.SortFunc(mt.Label, func(a, b *dto.LabelPair) int { return strings.Compare(a.GetName(), b.GetName()) })
		}
	}
	return mfs, err
}

// gatherOf gathers one collector on its own.
func gatherOf(c prometheus.Collector) prometheus.Gatherer {
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	return reg
}

// peerMetrics gathers another worker's metrics from its socket. A worker
// that does not answer (starting, restarting) is left out of the scrape
// and shown as gatehouse_worker_up 0, not made an error of it: the others'
// samples are still good.
type peerMetrics struct {
	path string
	up   prometheus.Gauge
	log  *slog.Logger
}

var protoDelim = expfmt.NewFormat(expfmt.TypeProtoDelim)

func (p *peerMetrics) Gather() ([]*dto.MetricFamily, error) {
	mfs, err := p.gather()
	if err != nil {
		p.up.Set(0)
		p.log.Debug("a worker's metrics were not read", "socket", p.path, "err", err)
		return nil, nil
	}
	p.up.Set(1)
	return mfs, nil
}

func (p *peerMetrics) gather() ([]*dto.MetricFamily, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", p.path)
		},
		DisableKeepAlives: true,
	}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://worker/metrics", nil)
	req.Header.Set("Accept", string(protoDelim))
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	dec := expfmt.NewDecoder(resp.Body, expfmt.ResponseFormat(resp.Header))
	var mfs []*dto.MetricFamily
	for {
		mf := new(dto.MetricFamily)
		if err := dec.Decode(mf); errors.Is(err, io.EOF) {
			return mfs, nil
		} else if err != nil {
			return nil, err
		}
		mfs = append(mfs, mf)
	}
}

// Supervisor runs workers 1…N-1 of a node and restarts those that exit.
type Supervisor struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	procs  map[int]*os.Process
}

// WorkerCommand is how a worker is started: the binary and arguments that
// run `gatehouse serve`. Tests replace it with their own binary.
var WorkerCommand = func() (string, []string, error) {
	exe, err := os.Executable()
	return exe, []string{"serve"}, err
}

// StartWorkers starts workers 1…N-1 of m, a running worker 0, with its
// configuration: the ports it resolved, the master key it loaded, a data
// directory each under its own. Their logs go to stderr (with a worker
// attribute); their standard output, the banner, is dropped.
func (m *Main) StartWorkers(stderr io.Writer) (*Supervisor, error) {
	exe, args, err := WorkerCommand()
	if err != nil {
		return nil, fmt.Errorf("workers: %w", err)
	}
	base := m.Config
	base.Listen = m.Addr.String()
	base.MSIListen = m.MSIAddr.String()
	base.Host = m.Host
	base.Dev, base.BootstrapFile = false, ""
	if src := ResolveKeySource(&m.Config); src.Managed {
		base.MasterKeyFile = src.Path // worker 0's, generated or found in its data directory
	}
	env := os.Environ()
	if _, set := os.LookupEnv("GOMAXPROCS"); !set {
		env = append(env, "GOMAXPROCS="+strconv.Itoa(WorkerProcs(base.Workers)))
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Supervisor{cancel: cancel, procs: map[int]*os.Process{}}
	for i := 1; i < base.Workers; i++ {
		spec := WorkerSpec{Index: i, Config: base, Root: m.Config.DataDir}
		spec.Config.DataDir = workerDir(m.Config.DataDir, i)
		b, err := json.Marshal(spec)
		if err != nil {
			cancel()
			return nil, err
		}
		s.wg.Add(1)
		go s.run(ctx, m.Logger.With("worker", i), i, exe, args, append(slices.Clip(env), workerEnv+"="+strconv.Itoa(i)), b, stderr)
	}
	return s, nil
}

// run keeps worker i running until ctx is done.
func (s *Supervisor) run(ctx context.Context, log *slog.Logger, i int, exe string, args, env []string, spec []byte, stderr io.Writer) {
	defer s.wg.Done()
	backoff := time.Second
	for {
		started := time.Now()
		err := s.start(ctx, i, exe, args, env, spec, stderr)
		if ctx.Err() != nil {
			return
		}
		if time.Since(started) > time.Minute {
			backoff = time.Second
		}
		log.Error("a worker stopped; starting it again", "err", err, "in", backoff.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// start runs worker i once, until it exits. The OS thread that forks the
// worker is held until then: the parent-death signal is sent when that
// thread ends, not the process.
func (s *Supervisor) start(ctx context.Context, i int, exe string, args, env []string, spec []byte, stderr io.Writer) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = env
	cmd.Stderr = stderr
	cmd.ExtraFiles = []*os.File{r}
	cmd.SysProcAttr = workerProcAttr()
	s.mu.Lock()
	if ctx.Err() != nil {
		s.mu.Unlock()
		r.Close()
		w.Close()
		return ctx.Err()
	}
	err = cmd.Start()
	r.Close()
	if err == nil {
		s.procs[i] = cmd.Process
	}
	s.mu.Unlock()
	if err != nil {
		w.Close()
		return err
	}
	_, werr := w.Write(spec)
	w.Close()
	if werr != nil {
		cmd.Process.Kill()
	}
	err = cmd.Wait()
	s.mu.Lock()
	delete(s.procs, i)
	s.mu.Unlock()
	if err == nil {
		err = errors.New("exited")
	}
	return err
}

// Signal sends sig to every running worker (SIGHUP: reload the model
// catalog).
func (s *Supervisor) Signal(sig os.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.procs {
		p.Signal(sig)
	}
}

// Stop asks every worker to shut down (SIGTERM: gracefully, within its
// shutdown timeout) and waits for them.
func (s *Supervisor) Stop() {
	s.mu.Lock()
	s.cancel()
	for _, p := range s.procs {
		p.Signal(syscall.SIGTERM)
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// Running is how many workers (besides worker 0) are running now.
func (s *Supervisor) Running() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.procs)
}

// Pids are the running workers' process IDs, by index.
func (s *Supervisor) Pids() map[int]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[int]int{}
	for i, p := range s.procs {
		out[i] = p.Pid
	}
	return out
}
