package server

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkEdge measures what every request pays before its handler: the
// middleware (request id, metrics, access-log check) and Host routing.
func BenchmarkEdge(b *testing.B) {
	r := NewRouter("gw.example:8443")
	r.Root.Handle("POST /ai/{account}/x", WithSurface(SurfaceGateway, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
	})))
	mw := &Middleware{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: NewMetrics()}
	h := mw.Wrap(r)
	req := httptest.NewRequest("POST", "https://gw.example:8443/ai/acct/x", nil)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, req)
	}
}
