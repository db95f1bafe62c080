package portal

import (
	"errors"
	"net/http"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/authority"
)

// deviceView is device.html: Step "enter" (the code form), "confirm"
// (what asks for what, approve or decline) or "done".
type deviceView struct {
	Step     string
	Code     string
	Error    string
	Request  *authority.DeviceRequest
	Approved bool
}

// devicePage is GET /portal/device[?code=…]: the form for the code the
// app printed.
func (p *Portal) devicePage(q *req) error {
	if p.opts.SignIns == nil {
		return gatehouse.NotFoundf(gatehouse.CodeNotFound, "This server does not sign devices in.")
	}
	code := q.r.URL.Query().Get("code")
	if len(code) > 20 {
		code = ""
	}
	return p.render(q, http.StatusOK, "device", "Sign in on another device", deviceView{Step: "enter", Code: code})
}

// deviceLookup is POST /portal/device: the code typed, the request it
// names shown for a decision. Wrong codes count as failed sign-ins (a
// guesser of codes is throttled like a guesser of passwords, on a count of
// its own).
func (p *Portal) deviceLookup(q *req) error {
	if p.opts.SignIns == nil {
		return gatehouse.NotFoundf(gatehouse.CodeNotFound, "This server does not sign devices in.")
	}
	if err := q.form(); err != nil {
		return err
	}
	code := strings.TrimSpace(q.r.PostForm.Get("code"))
	v := deviceView{Step: "enter", Code: code}
	if len(v.Code) > 20 {
		v.Code = v.Code[:20]
	}
	if p.codes.blocked(q.r, q.user.UserName) {
		v.Error = "Too many wrong codes. Wait a minute and try again."
		q.w.Header().Set("Retry-After", "60")
		return p.render(q, http.StatusTooManyRequests, "device", "Sign in on another device", v)
	}
	dr, err := p.opts.SignIns.DeviceRequest(q.ctx(), code)
	if err == nil && dr.State != authority.DevicePending {
		err = authority.ErrDeviceCodeDecided
	}
	if err == nil && !strings.EqualFold(dr.TenantID, q.user.TenantID) {
		err = authority.ErrDeviceCodeUnknown // another tenant's: not this person's to see
	}
	switch {
	case errors.Is(err, authority.ErrDeviceCodeUnknown), errors.Is(err, authority.ErrDeviceCodeDecided):
		p.codes.failed(q.r, q.user.UserName)
		e, _ := gatehouse.AsError(err)
		v.Error = e.Message
		return p.render(q, e.Status, "device", "Sign in on another device", v)
	case err != nil:
		return err
	}
	return p.render(q, http.StatusOK, "device", "Sign in on another device", deviceView{Step: "confirm", Code: dr.UserCode, Request: dr})
}

// deviceDecide is POST /portal/device/approve and /portal/device/decline.
func (p *Portal) deviceDecide(approve bool) func(q *req) error {
	return func(q *req) error {
		if p.opts.SignIns == nil {
			return gatehouse.NotFoundf(gatehouse.CodeNotFound, "This server does not sign devices in.")
		}
		if err := q.form(); err != nil {
			return err
		}
		u := q.user
		// The same throttle as the lookup's: a code guessed here could
		// otherwise be declined (or approved) past it.
		if p.codes.blocked(q.r, u.UserName) {
			q.w.Header().Set("Retry-After", "60")
			return p.render(q, http.StatusTooManyRequests, "device", "Sign in on another device",
				deviceView{Step: "enter", Error: "Too many wrong codes. Wait a minute and try again."})
		}
		person := gatehouse.Principal{Type: gatehouse.PrincipalUser, ObjectID: u.ObjectID, TenantID: u.TenantID, Name: u.UserName}
		dr, err := p.opts.SignIns.DecideDevice(q.ctx(), q.r, q.r.PostForm.Get("code"), person, approve)
		if err != nil {
			e, ok := gatehouse.AsError(err)
			if !ok || e.Status >= 500 {
				return err
			}
			if e.Status == http.StatusForbidden {
				e = authority.ErrDeviceCodeUnknown // another tenant's: answered as the lookup answers it
			}
			p.codes.failed(q.r, u.UserName)
			return p.render(q, e.Status, "device", "Sign in on another device", deviceView{Step: "enter", Error: e.Message})
		}
		return p.render(q, http.StatusOK, "device", "Sign in on another device", deviceView{Step: "done", Request: dr, Approved: approve})
	}
}
