package server

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the HTTP metrics and the registry every package registers
// its own collectors in. Labels never carry a key, token or secret.
type Metrics struct {
	Registry *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec

	// The children of requests and latency, resolved once per label set:
	// WithLabelValues hashes every label and formats the status on each
	// call, which the hot path should not pay.
	counters  sync.Map // requestLabels → prometheus.Counter
	latencies sync.Map // Surface → prometheus.Observer
}

type requestLabels struct {
	surface Surface
	method  string
	status  int
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

// knownMethods bounds the method label's cardinality.
var knownMethods = map[string]string{
	http.MethodGet: http.MethodGet, http.MethodPost: http.MethodPost, http.MethodPut: http.MethodPut,
	http.MethodPatch: http.MethodPatch, http.MethodDelete: http.MethodDelete, http.MethodHead: http.MethodHead,
	http.MethodOptions: http.MethodOptions,
}

func (m *Metrics) observe(s Surface, method string, status int, d time.Duration) {
	mth, ok := knownMethods[method]
	if !ok {
		mth = "OTHER"
	}
	k := requestLabels{s, mth, status}
	c, ok := m.counters.Load(k)
	if !ok {
		c, _ = m.counters.LoadOrStore(k, m.requests.WithLabelValues(string(s), mth, strconv.Itoa(status)))
	}
	c.(prometheus.Counter).Inc()
	o, ok := m.latencies.Load(s)
	if !ok {
		o, _ = m.latencies.LoadOrStore(s, m.latency.WithLabelValues(string(s)))
	}
	o.(prometheus.Observer).Observe(d.Seconds())
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}
