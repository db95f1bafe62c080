package gateway

import (
	"io"
	"net/http"
	"net/url"
	"slices"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/server"
)

// The Responses API (routes in gateway.go's responsesRoutes).
//
// Creating a response names a deployment in the body's "model", like the
// v1 API's other operations, and is proxied by serve to the deployment's
// upstream /v1/responses (streaming included). The operations on a stored
// response — GET, DELETE, POST …/cancel, GET …/input_items — name only
// the response. Azure keeps responses per resource; here they live in the
// upstreams, and the gateway keeps nothing that would have to be shared
// between nodes: it asks the account's upstreams in turn (deployments in
// name order, each upstream and credential once) and answers with the
// first that knows the response. An upstream that answers 404 or 405
// does not have it (or has no Responses API); one that fails or refuses
// its credential is passed over, and its error is the answer only when no
// other upstream has the response. With one deployment, the common case,
// this is one request.

// serveStored forwards an operation on the stored response named by the
// route's {response} (c.param): method to {upstream}/v1/responses/{id}
// {suffix}, with the client's query (include[], stream, after, limit,
// order, …) less the api-version and any credential. versioned requires an api-version.
func (p *proxy) serveStored(w http.ResponseWriter, r *http.Request, c *call, method, suffix string, versioned bool) error {
	if versioned {
		if err := checkOpenAIVersion(r.URL.RawQuery); err != nil {
			return err
		}
	}
	id := c.param
	if !validResponseID(id) {
		return gatehouse.Errorf(http.StatusNotFound, "NotFound", "No response has that id.")
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return badRequest("The query string does not parse.")
	}
	q.Del("api-version")
	dropCredentialParams(q)
	query := q.Encode()

	type target struct{ url, authName, authValue string }
	var (
		tried   []target
		failure error // the first upstream that failed or refused its credential
	)
	var names []string
	if only := r.PathValue("deployment"); only != "" {
		// …/openai/deployments/{deployment}/responses/{id}: that one only.
		if _, err := p.deployment(c, only); err != nil {
			return err
		}
		names = []string{only}
	} else if p.deployments != nil {
		names = p.deployments.DeploymentNames(&c.account)
	}
	for _, name := range names {
		d, ok := p.deployments.Deployment(&c.account, name)
		if !ok {
			continue // deleted since the list was made
		}
		if d.Unavailable != nil {
			if failure == nil {
				failure = d.Unavailable
			}
			continue
		}
		d.prepare()
		base := d.urls[opResponses]
		t := target{base.String(), d.authName, d.authValue}
		if slices.Contains(tried, t) {
			continue
		}
		tried = append(tried, t)

		u := *base
		u.Path += "/" + id + suffix
		u.RawPath = ""
		u.RawQuery = query
		o := &c.out
		*o = Outbound{Method: method, URL: &u}
		o.Fields = o.fields[:0]
		for _, h := range forwardHeaders {
			if v := r.Header[h]; len(v) > 0 && h != "Content-Type" {
				o.Fields = append(o.Fields, Field{h, v[0]})
			}
		}
		o.Fields = append(o.Fields, Field{"X-Request-Id", server.RequestID(r.Context())})
		if d.authName != "" {
			o.Fields = append(o.Fields, Field{d.authName, d.authValue})
		}
		resp, err := p.send(r.Context(), o)
		if err != nil {
			if r.Context().Err() != nil {
				return p.upstreamFailed(r.Context(), d, err)
			}
			if failure == nil {
				failure = p.upstreamFailed(r.Context(), d, err)
			}
			continue
		}
		switch s := resp.StatusCode; {
		case s == http.StatusNotFound || s == http.StatusMethodNotAllowed:
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			continue
		case s == http.StatusUnauthorized || s == http.StatusForbidden || s >= 500:
			err := upstreamError(resp, d)
			resp.Body.Close()
			if failure == nil {
				failure = err
			}
			continue
		case s >= 300: // a redirect is never passed on (upstreamError)
			defer resp.Body.Close()
			return upstreamError(resp, d)
		}
		defer resp.Body.Close()
		copyResponse(w, resp, nil, false, &d.secret, p.socketWriteTimeout()) // counted when it was created
		return nil
	}
	if failure != nil {
		return failure
	}
	return gatehouse.Errorf(http.StatusNotFound, "NotFound", "Response with id '%s' not found.", id)
}

// validResponseID reports whether id can be a response id: what OpenAI
// and the OpenAI-compatible servers issue ("resp_" and letters, digits,
// '-', '_'; LiteLLM's base64 adds '=', '+' and '.'), at most 256 bytes,
// never a dot segment. It goes into the upstream's path as it is.
func validResponseID(id string) bool {
	if id == "" || len(id) > 256 || id == "." || id == ".." {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '_', c == '=', c == '+', c == '.':
		default:
			return false
		}
	}
	return true
}
