package gateway

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
)

// serveForm forwards a multipart/form-data operation — audio
// transcriptions and translations, whose body carries the audio file —
// to the deployment's upstream /v1/{op}, as serve does a JSON one: the
// deployment is the path's or, with byModel, the form's "model" field,
// and that field is rewritten to the upstream's model (added when the
// client left it out). Everything else in the form, files included,
// goes along byte for byte under the client's boundary, so the client's
// Content-Type still describes the body.
func (p *proxy) serveForm(w http.ResponseWriter, r *http.Request, c *call, op string, byModel, versioned bool) error {
	if versioned {
		if err := checkOpenAIVersion(r.URL.RawQuery); err != nil {
			return err
		}
	}
	var d *Deployment
	if !byModel {
		var err error
		if d, err = p.deployment(c, c.param); err != nil {
			return err
		}
	}
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	boundary := params["boundary"]
	if err != nil || mt != "multipart/form-data" || boundary == "" {
		return badRequest("The request body must be multipart/form-data (with a boundary).")
	}
	inp := inPool.Get().(*[]byte)
	defer putIn(inp)
	in, err := p.readRequestBody(w, r, inp, max(p.maxBody, maxFormBody))
	if err != nil {
		return err
	}
	model, err := formModel(in, boundary)
	if err != nil {
		return badRequest("The multipart/form-data body could not be read: %s.", err.Error())
	}
	if byModel {
		if model == "" {
			return badRequest("The \"model\" field is required: it names the deployment.")
		}
		if d, err = p.deployment(c, model); err != nil {
			return err
		}
	}
	body := in
	if d.Model != "" && d.Model != model {
		if body, err = setFormModel(in, boundary, d.Model); err != nil {
			return badRequest("The multipart/form-data body could not be read: %s.", err.Error())
		}
	} else if _, fast := p.transport.(*UpstreamClient); !fast {
		body = bytes.Clone(in) // see serve: another transport may read it later
	}
	return p.forwardBody(w, r, c, d, op, body, 0) // audio: charged its reported usage only
}

// maxFormBody is the least size a form may have whatever MaxBodyBytes
// says: Azure OpenAI takes audio files of up to 25 MB, and the other
// fields need far less than the MiB on top.
const maxFormBody = 26 << 20

// maxFormParts bounds the parts of a form (OpenAI's audio operations take
// about ten fields).
const maxFormParts = 100

// formModel returns the value of the form's "model" field ("" if it has
// none), checking on the way that the whole body is a well-formed
// multipart body.
func formModel(body []byte, boundary string) (string, error) {
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	model := ""
	for n := 0; ; n++ {
		part, err := mr.NextRawPart()
		if err == io.EOF {
			if n == 0 {
				return "", errors.New("it has no parts")
			}
			return model, nil
		}
		if err != nil {
			return "", errors.New("it is not a well-formed multipart body")
		}
		if n == maxFormParts {
			return "", errors.New("it has too many parts")
		}
		// A part the gateway would read one way and an upstream another
		// (two names, two Content-Disposition fields, a model sent as a
		// file) could carry the client's model past setFormModel.
		cd := part.Header.Values("Content-Disposition")
		if len(cd) > 1 {
			return "", errors.New("a part has two Content-Disposition fields")
		}
		if len(cd) == 1 {
			if _, params, err := mime.ParseMediaType(cd[0]); err != nil {
				return "", errors.New("a part's Content-Disposition is not valid")
			} else if _, file := params["filename"]; params["name"] == "model" && file {
				return "", errors.New("its model field is a file")
			}
		}
		if part.FormName() == "model" && part.FileName() == "" {
			v, err := io.ReadAll(io.LimitReader(part, 257))
			if err != nil {
				return "", errors.New("it is not a well-formed multipart body")
			}
			if len(v) > 256 {
				return "", errors.New("its model field is too long")
			}
			model = string(v)
		}
		if _, err := io.Copy(io.Discard, part); err != nil {
			return "", errors.New("it is not a well-formed multipart body")
		}
	}
}

// setFormModel returns body with the "model" field's value replaced by
// model (or a model field added at the end), every other part as it was,
// under the same boundary.
func setFormModel(body []byte, boundary, model string) ([]byte, error) {
	var out bytes.Buffer
	out.Grow(len(body) + len(model) + 128)
	mw := multipart.NewWriter(&out)
	if err := mw.SetBoundary(boundary); err != nil {
		return nil, errors.New("its boundary is not valid")
	}
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	seen := false
	for {
		part, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, errors.New("it is not a well-formed multipart body")
		}
		pw, err := mw.CreatePart(part.Header)
		if err != nil {
			return nil, err
		}
		if part.FormName() == "model" && part.FileName() == "" {
			seen = true
			io.WriteString(pw, model)
			continue
		}
		if _, err := io.Copy(pw, part); err != nil {
			return nil, errors.New("it is not a well-formed multipart body")
		}
	}
	if !seen {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", `form-data; name="model"`)
		pw, _ := mw.CreatePart(h)
		io.WriteString(pw, model)
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
