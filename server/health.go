package server

import (
	"context"
	"net/http"
	"net/netip"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/netacl"
)

// Pinger reports whether a dependency answers.
type Pinger interface {
	Ping(ctx context.Context) error
}

// MountOps mounts /healthz (the process answers), /readyz (ready answers:
// storage, and for a node the change feed caught up)
// and /metrics on mux. /metrics names every account and deployment (and
// counts denials by reason), so it answers only the clients whose address
// metricsClients holds (the TCP peer's, or the PROXY protocol's); others
// get 403.
func MountOps(mux *http.ServeMux, ready Pinger, metrics *Metrics, metricsClients netacl.Networks) {
	mux.Handle("GET /healthz", WithSurface(SurfaceOps, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})))
	mux.Handle("GET /readyz", WithSurface(SurfaceOps, Handle(RenderAzure, func(w http.ResponseWriter, r *http.Request) error {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := ready.Ping(ctx); err != nil {
			return gatehouse.ErrUnavailable.WithCause(err)
		}
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
		return nil
	})))
	serveMetrics := metrics.Handler()
	mux.Handle("GET /metrics", WithSurface(SurfaceOps, Handle(RenderAzure, func(w http.ResponseWriter, r *http.Request) error {
		if ap, err := netip.ParseAddrPort(r.RemoteAddr); err != nil || !metricsClients.Contains(ap.Addr()) {
			return gatehouse.Errorf(http.StatusForbidden, "Forbidden",
				"/metrics is served only to the networks the node's --metrics-networks names; this client's address is not among them.")
		}
		serveMetrics.ServeHTTP(w, r)
		return nil
	})))
}
