package server

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/server/h1"
)

// HandlerFunc is an HTTP handler that returns an error instead of writing
// one. The error is rendered by the Renderer it is adapted with.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// Renderer writes err (already reduced to a public *gatehouse.Error) to w.
type Renderer func(w http.ResponseWriter, r *http.Request, err *gatehouse.Error)

// Handle adapts h to http.Handler, rendering its errors with render.
func Handle(render Renderer, h HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			RenderError(w, r, render, err)
		}
	})
}

// RenderError reduces err to its public form, logs what must be logged, and
// renders it. A non-*gatehouse.Error becomes ErrInternal; its text is logged,
// never sent.
func RenderError(w http.ResponseWriter, r *http.Request, render Renderer, err error) {
	if errors.Is(err, h1.ErrBodyTimeout) {
		// Whatever the handler made of it: the client stopped sending.
		err = errBodyTimeout
	}
	e, ok := gatehouse.AsError(err)
	info := infoFrom(r.Context())
	if !ok || e.Status >= 500 {
		logger := slog.Default()
		if info != nil {
			logger = info.logger
		}
		logger.LogAttrs(r.Context(), slog.LevelError, "request failed",
			slog.String("request_id", RequestID(r.Context())),
			slog.String("method", r.Method), slog.String("path", LogPath(r)),
			slog.String("err", err.Error()))
		if !ok {
			e = gatehouse.ErrInternal
		}
	}
	if info != nil {
		info.errCode = e.Code
	}
	if e.Status == http.StatusInternalServerError && e.Code == gatehouse.CodeInternal {
		// The message of a 500 never carries anything but the request id.
		e = &gatehouse.Error{Status: e.Status, Code: e.Code,
			Message: "internal error (request id " + RequestID(r.Context()) + ")"}
	}
	for k, vs := range e.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	render(w, r, e)
}

var errBodyTimeout = gatehouse.Errorf(http.StatusRequestTimeout, "RequestTimeout",
	"The request body did not arrive in time.")

// azureError is the body shape shared by ARM, the AI data plane and Key Vault.
type azureError struct {
	Code       string        `json:"code"`
	Message    string        `json:"message"`
	Target     string        `json:"target,omitempty"`
	Param      string        `json:"param,omitempty"`
	Type       string        `json:"type,omitempty"`
	Details    []*azureError `json:"details,omitempty"`
	InnerError any           `json:"innererror,omitempty"`
}

type innerError struct {
	Code string `json:"code"`
}

func toAzure(e *gatehouse.Error) *azureError {
	a := &azureError{Code: e.Code, Message: e.Message, Target: e.Target, Param: e.Param, Type: e.Type}
	for _, d := range e.Details {
		a.Details = append(a.Details, toAzure(d))
	}
	switch {
	case len(e.Inner) > 0:
		a.InnerError = e.Inner
	case e.InnerCode != "":
		a.InnerError = &innerError{Code: e.InnerCode}
	}
	return a
}

// RenderAzure is the renderer of the Azure-shaped surfaces:
// {"error":{"code","message","target","details","innererror"}} and the
// x-ms-error-code header that azcore reads first.
func RenderAzure(w http.ResponseWriter, r *http.Request, e *gatehouse.Error) {
	w.Header().Set("x-ms-error-code", e.Code)
	WriteJSON(w, e.Status, struct {
		Error *azureError `json:"error"`
	}{toAzure(e)})
}

// WriteJSON writes v as a JSON response with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only a programming error (an unmarshalable type) gets here.
		http.Error(w, `{"error":{"code":"InternalServerError","message":"internal error"}}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b)
}
