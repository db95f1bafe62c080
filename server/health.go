package server

import (
	"context"
	"net/http"
	"time"

	"github.com/gatehouse/gatehouse"
)

// Pinger reports whether a dependency answers.
type Pinger interface {
	Ping(ctx context.Context) error
}

// MountOps mounts /healthz (the process answers), /readyz (storage answers)
// and /metrics on mux.
func MountOps(mux *http.ServeMux, store Pinger, metrics *Metrics) {
	mux.Handle("GET /healthz", WithSurface(SurfaceOps, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})))
	mux.Handle("GET /readyz", WithSurface(SurfaceOps, Handle(RenderAzure, func(w http.ResponseWriter, r *http.Request) error {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := store.Ping(ctx); err != nil {
			return gatehouse.ErrUnavailable.WithCause(err)
		}
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
		return nil
	})))
	mux.Handle("GET /metrics", WithSurface(SurfaceOps, metrics.Handler()))
}
