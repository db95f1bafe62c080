package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/app"
	"github.com/gatehouse/gatehouse/storage/postgres/pgtest"
)

// TestMain lets this test binary be a worker: TestServeWorkers' worker 0
// starts it again with `serve`, as the gatehouse binary starts itself.
func TestMain(m *testing.M) {
	if app.IsWorker(os.LookupEnv) {
		os.Exit(Main(context.Background(), os.Args[1:], Env{
			Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, LookupEnv: os.LookupEnv}))
	}
	app.WorkerCommand = func() (string, []string, error) { return os.Args[0], []string{"serve"}, nil }
	os.Exit(m.Run())
}

// lockedBuffer is a bytes.Buffer safe to read while a server writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestServeWorkers runs `serve --workers 2` on PostgreSQL: both workers
// take connections on the one port, a scrape of /metrics at either shows
// both, a worker killed is started again, and stopping worker 0 stops it.
func TestServeWorkers(t *testing.T) {
	dsn := pgtest.DSN(t)
	dir := t.TempDir()
	// serve gives worker 0 its share of the cores: this process.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	var stdout, stderr lockedBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"serve", "--workers", "2", "--data-dir", filepath.Join(dir, "data"), "--listen", "127.0.0.1:0",
			"--msi-listen", "127.0.0.1:0", "--postgres", dsn, "--log-level", "warn"},
			Env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, LookupEnv: func(string) (string, bool) { return "", false }})
	}()
	stopped := false
	stop := func() int {
		cancel()
		select {
		case code := <-done:
			stopped = true
			return code
		case <-time.After(time.Minute):
			t.Fatalf("serve did not stop; stderr:\n%s", stderr.String())
			return -1
		}
	}
	defer func() {
		if !stopped {
			stop()
		}
	}()

	var url string
	waitFor(t, &stderr, "the banner", func() bool {
		m := regexp.MustCompile(`listening on (https://\S+)`).FindStringSubmatch(stdout.String())
		if m != nil {
			url = m[1]
		}
		return m != nil
	})
	if !strings.Contains(stdout.String(), "Workers: 2 processes share the ports") {
		t.Errorf("the banner does not name the workers:\n%s", stdout.String())
	}
	ca, err := os.ReadFile(filepath.Join(dir, "data", "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	// A connection per request: the kernel spreads connections, not requests.
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}}
	get := func(path string) string {
		resp, err := client.Get(url + path)
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return ""
		}
		return string(b)
	}
	up := func(worker int) bool {
		return strings.Contains(get("/metrics"), fmt.Sprintf(`gatehouse_worker_up{worker="%d"} 1`, worker))
	}
	waitFor(t, &stderr, "worker 1", func() bool { return up(1) })

	for range 40 {
		if get("/healthz") == "" {
			t.Fatal("healthz failed")
		}
	}
	metrics := get("/metrics")
	for w := range 2 {
		re := regexp.MustCompile(`gatehouse_http_requests_total\{method="GET",status="200",surface="ops",worker="` + strconv.Itoa(w) + `"\} (\d+)`)
		if m := re.FindStringSubmatch(metrics); m == nil {
			t.Errorf("worker %d served no request of 40 connections (or /metrics misses it):\n%s", w, grep(metrics, "surface=\"ops\""))
		}
	}

	// Kill worker 1: worker 0 starts it again.
	pid := workerPid(t)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, &stderr, "worker 1 to be restarted", func() bool { p := childPid(); return p != 0 && p != pid && up(1) })
	if !strings.Contains(stderr.String(), "a worker stopped; starting it again") {
		t.Errorf("the restart is not logged:\n%s", stderr.String())
	}

	pid = workerPid(t)
	if code := stop(); code != 0 {
		t.Fatalf("serve exited %d; stderr:\n%s", code, stderr.String())
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("worker 1 (pid %d) still runs after worker 0 stopped", pid)
	}
}

// childPid is the pid of this process's child that runs `serve` (worker
// 1), or 0.
func childPid() int {
	self := strconv.Itoa(os.Getpid())
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid …: comm may hold spaces, so split after ')'.
		rest := string(stat[bytes.LastIndexByte(stat, ')')+1:])
		if f := strings.Fields(rest); len(f) > 1 && f[1] == self && f[0] != "Z" {
			return pid
		}
	}
	return 0
}

func workerPid(t *testing.T) int {
	t.Helper()
	pid := childPid()
	if pid == 0 {
		t.Fatal("no worker process")
	}
	return pid
}

// waitFor polls cond for up to a minute.
func waitFor(t *testing.T, logs *lockedBuffer, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; stderr:\n%s", what, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
