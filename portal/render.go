package portal

import (
	"bytes"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/directory"
	"github.com/gatehouse/gatehouse/server"
)

// pageNames are the templates under templates/, each rendered inside
// layout.html.
var pageNames = []string{"signin", "home", "account", "vault", "activity", "error", "confirm", "device", "authorize"}

func parsePages() map[string]*template.Template {
	funcs := template.FuncMap{
		"when": func(t time.Time) string {
			if t.IsZero() {
				return "never"
			}
			return t.UTC().Format("2006-01-02 15:04:05 UTC")
		},
		"join": strings.Join,
	}
	layout := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/partials.html"))
	pages := make(map[string]*template.Template, len(pageNames))
	for _, name := range pageNames {
		t := template.Must(layout.Clone())
		pages[name] = template.Must(t.ParseFS(templateFS, "templates/"+name+".html"))
	}
	return pages
}

// layoutData is what layout.html sees.
type layoutData struct {
	Title string
	User  *directory.User
	Page  any
	// RequestID is shown on error pages, so a person can quote it.
	RequestID string
}

// render writes a whole page. A template failure is a programming error:
// it is rendered as an internal error (the page is buffered, so nothing
// half-written goes out).
func (p *Portal) render(q *req, status int, page, title string, v any) error {
	var b bytes.Buffer
	if err := p.pages[page].ExecuteTemplate(&b, "layout.html", layoutData{Title: title, User: q.user, Page: v,
		RequestID: server.RequestID(q.ctx())}); err != nil {
		return err
	}
	q.w.Header().Set("Content-Type", "text/html; charset=utf-8")
	q.w.WriteHeader(status)
	_, _ = q.w.Write(b.Bytes())
	return nil
}

// renderFragment writes one named template of a page (for htmx swaps),
// with status 200, or the status of an errorView.
func (p *Portal) renderFragment(q *req, page, name string, v any) error {
	var b bytes.Buffer
	if err := p.pages[page].ExecuteTemplate(&b, name, v); err != nil {
		return err
	}
	q.w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if ev, ok := v.(errorView); ok {
		q.w.WriteHeader(ev.Status)
	}
	_, _ = q.w.Write(b.Bytes())
	return nil
}

type errorView struct {
	Status  int
	Code    string
	Message string
}

// renderError is the portal's renderer: an HTML page with the public
// message (server.RenderError has already reduced the error and logged
// what must be logged). htmx requests get the message as a fragment with
// the status, which htmx does not swap; the page shows it instead.
func (p *Portal) renderError(w http.ResponseWriter, r *http.Request, err error) {
	server.RenderError(w, r, func(w http.ResponseWriter, r *http.Request, e *gatehouse.Error) {
		w.Header().Set("Cache-Control", "no-store")
		q := &req{w: w, r: r}
		v := errorView{Status: e.Status, Code: e.Code, Message: e.Message}
		if q.htmx() {
			// htmx swaps the answer into the keys panel (layout.html
			// tells it to swap 4xx/5xx too): say what went wrong there.
			if rerr := p.renderFragment(q, "error", "panel-error", v); rerr == nil {
				return
			}
		}
		if u, err := p.session(r); err == nil {
			q.user = u
		}
		if rerr := p.render(q, e.Status, "error", http.StatusText(e.Status), v); rerr != nil {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(e.Status)
			_, _ = w.Write([]byte(strconv.Itoa(e.Status) + " " + e.Message + "\n"))
		}
	}, err)
}

// ago says how long before now t was, roughly.
func ago(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return "less than a minute ago"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + " minute(s) ago"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + " hour(s) ago"
	}
	return strconv.Itoa(int(d/(24*time.Hour))) + " day(s) ago"
}
