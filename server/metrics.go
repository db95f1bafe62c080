package server

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the HTTP metrics and the registry every package registers
// its own collectors in. Labels never carry a key, token or secret.
type Metrics struct {
	Registry *prometheus.Registry
	// Gatherer, when set, is what /metrics serves instead of Registry
	// (a node of several processes: every process's registry).
	Gatherer prometheus.Gatherer
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec

	// The children of requests and latency, resolved once per label set:
	// WithLabelValues hashes every label and formats the status on each
	// call, which the hot path should not pay. The known surfaces, methods
	// and statuses index arrays (no hashing at all); any other label set
	// falls back to others.
	cells     [len(surfaces)][len(methodLabels)]atomic.Pointer[statusCells]
	latencies [len(surfaces)]atomic.Pointer[prometheus.Observer]
	others    sync.Map // requestLabels → prometheus.Counter
}

type requestLabels struct {
	surface Surface
	method  string
	status  int
}

// statusCells are one surface's and method's counters by status - 100.
type statusCells [600]atomic.Pointer[prometheus.Counter]

// surfaces are the surfaces the arrays index.
var surfaces = [...]Surface{SurfaceNone, SurfaceOps, SurfaceAuthority, SurfaceManagement, SurfaceSTS,
	SurfaceGateway, SurfaceVault, SurfacePortal, SurfaceGraph, SurfaceMSI}

// surfaceIndex is s's index in surfaces, or -1.
func surfaceIndex(s Surface) int {
	for i, x := range surfaces {
		if x == s {
			return i
		}
	}
	return -1
}

// methodLabels are the method label's values (its cardinality is bounded),
// OTHER last.
var methodLabels = [...]string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch,
	http.MethodDelete, http.MethodHead, http.MethodOptions, "OTHER"}

// methodIndex is the index of method's label in methodLabels (OTHER for
// any method but the known ones).
func methodIndex(method string) int {
	for i, x := range methodLabels[:len(methodLabels)-1] {
		if x == method {
			return i
		}
	}
	return len(methodLabels) - 1
}

// NewMetrics returns a registry with the process and Go collectors and the
// HTTP metrics.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &Metrics{
		Registry: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_http_requests_total",
			Help: "HTTP requests by surface, method and status.",
		}, []string{"surface", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gatehouse_http_request_duration_seconds",
			Help:    "HTTP request latency by surface.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"surface"}),
	}
	reg.MustRegister(m.requests, m.latency)
	return m
}

func (m *Metrics) observe(s Surface, method string, status int, d time.Duration) {
	mi := methodIndex(method)
	si := surfaceIndex(s)
	if si < 0 || status < 100 || status >= 700 {
		k := requestLabels{s, methodLabels[mi], status}
		c, ok := m.others.Load(k)
		if !ok {
			c, _ = m.others.LoadOrStore(k, m.requests.WithLabelValues(string(s), k.method, strconv.Itoa(status)))
		}
		c.(prometheus.Counter).Inc()
		m.latency.WithLabelValues(string(s)).Observe(d.Seconds())
		return
	}
	cells := m.cells[si][mi].Load()
	if cells == nil {
		m.cells[si][mi].CompareAndSwap(nil, new(statusCells))
		cells = m.cells[si][mi].Load()
	}
	cell := &cells[status-100]
	c := cell.Load()
	if c == nil {
		// WithLabelValues returns the same child to racing callers.
		ctr := m.requests.WithLabelValues(string(s), methodLabels[mi], strconv.Itoa(status))
		cell.Store(&ctr)
		c = &ctr
	}
	(*c).Inc()
	o := m.latencies[si].Load()
	if o == nil {
		obs := m.latency.WithLabelValues(string(s))
		m.latencies[si].Store(&obs)
		o = &obs
	}
	(*o).Observe(d.Seconds())
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	if m.Gatherer != nil {
		return promhttp.HandlerFor(m.Gatherer, promhttp.HandlerOpts{})
	}
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}
