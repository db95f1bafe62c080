package kvapi

import (
	"encoding/base64"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/vault"
)

// Data actions (azure-wire.md §4.5).
const (
	actGet      = vault.ActionGetSecret
	actMetadata = "Microsoft.KeyVault/vaults/secrets/readMetadata/action"
	actSet      = "Microsoft.KeyVault/vaults/secrets/setSecret/action"
	actUpdate   = "Microsoft.KeyVault/vaults/secrets/update/action"
	actDelete   = "Microsoft.KeyVault/vaults/secrets/delete"
	actBackup   = "Microsoft.KeyVault/vaults/secrets/backup/action"
	actRestore  = "Microsoft.KeyVault/vaults/secrets/restore/action"
	actRecover  = "Microsoft.KeyVault/vaults/secrets/recover/action"
	actPurge    = "Microsoft.KeyVault/vaults/secrets/purge/action"
)

// Mount registers the routes on the vault host's mux ({vault}.vault.H).
// Every route authenticates first: the SDKs' body-less probe gets its
// challenge before anything looks at the request.
func (a *API) Mount(mux *http.ServeMux) {
	read := op{action: actGet}
	meta := op{action: actMetadata}
	for _, rt := range []struct {
		pattern string
		o       op
		h       func(*call) error
	}{
		{"PUT /secrets/{name}", op{action: actSet, write: true}, setSecret},
		{"GET /secrets", meta, listSecrets},
		{"GET /secrets/{$}", meta, listSecrets},
		{"GET /secrets/{name}", read, getSecret},
		{"GET /secrets/{name}/{$}", read, getSecret},
		{"GET /secrets/{name}/{version}", read, getSecret},
		{"GET /secrets/{name}/versions", meta, listVersions},
		{"PATCH /secrets/{name}", op{action: actUpdate, write: true}, updateSecret},
		{"PATCH /secrets/{name}/{$}", op{action: actUpdate, write: true}, updateSecret},
		{"PATCH /secrets/{name}/{version}", op{action: actUpdate, write: true}, updateSecret},
		{"DELETE /secrets/{name}", op{action: actDelete, write: true}, deleteSecret},
		{"POST /secrets/{name}/backup", op{action: actBackup, write: true}, backupSecret},
		{"POST /secrets/restore", op{action: actRestore, write: true}, restoreSecret},
		{"GET /deletedsecrets", meta, listDeleted},
		{"GET /deletedsecrets/{$}", meta, listDeleted},
		{"GET /deletedsecrets/{name}", meta, getDeleted},
		{"DELETE /deletedsecrets/{name}", op{action: actPurge, write: true}, purgeSecret},
		{"POST /deletedsecrets/{name}/recover", op{action: actRecover, write: true}, recoverSecret},
	} {
		mux.Handle(rt.pattern, a.handle(rt.o, rt.h))
	}
}

// secret validates the {name} of the path and authorizes the operation at
// the secret's scope.
func (c *call) secret() (string, error) {
	name := c.r.PathValue("name")
	if err := vault.ValidateSecretName(name); err != nil {
		return "", err
	}
	c.detail("name", name)
	return name, c.authorize(vault.SecretScope(c.vault, name))
}

// GET /secrets/{name}[/[{version}]]: the value (getSecret).
func getSecret(c *call) error {
	name, err := c.secret()
	if err != nil {
		return err
	}
	s, err := c.api.opts.Vaults.GetSecret(c.ctx(), c.vault, name, c.r.PathValue("version"))
	if err != nil {
		return err
	}
	return c.replySecret(http.StatusOK, s)
}

// replySecret writes a SecretBundle with its value; the plaintext is
// cleared once written.
func (c *call) replySecret(status int, s *vault.Secret) error {
	out := view(c.vault, s, true)
	value := string(s.Value)
	clear(s.Value)
	out.Value = &value
	c.w.Header().Set("Cache-Control", "no-store")
	return c.reply(status, out)
}

type attributesBody struct {
	Enabled   *bool  `json:"enabled"`
	NotBefore *int64 `json:"nbf"`
	Expires   *int64 `json:"exp"`
}

// maxUnix is 9999-12-31T23:59:59Z, the last second an attribute time
// holds (Key Vault's are DateTimes).
const maxUnix = 253402300799

// attrTime is the attribute field (nbf or exp) as a time, zero when it is
// absent. Outside 1970 to 9999 it is 400: time.Unix would wrap such a
// number round, and a secret "not valid before year 292 billion" would be
// stored as valid since the past.
func attrTime(p *int64, field string) (time.Time, error) {
	if p == nil {
		return time.Time{}, nil
	}
	if *p < 0 || *p > maxUnix {
		return time.Time{}, gatehouse.BadRequestf(vault.CodeBadParameter,
			"The attribute '%s' is out of range: a time in Unix seconds from 1970 through 9999 is required.", field).WithTarget("attributes." + field)
	}
	return time.Unix(*p, 0).UTC(), nil
}

// PUT /secrets/{name}: a new version (200 SecretBundle, as Go accepts only 200).
func setSecret(c *call) error {
	name, err := c.secret()
	if err != nil {
		return err
	}
	var body struct {
		Value       *string           `json:"value"`
		ContentType *string           `json:"contentType"`
		Attributes  *attributesBody   `json:"attributes"`
		Tags        map[string]string `json:"tags"`
	}
	if err := c.decode(&body); err != nil {
		return err
	}
	if body.Value == nil {
		return gatehouse.BadRequestf(vault.CodeBadParameter, "The property 'value' is required.").WithTarget("value")
	}
	in := vault.SetInput{Value: []byte(*body.Value), Tags: body.Tags}
	if body.ContentType != nil {
		in.ContentType = *body.ContentType
	}
	if a := body.Attributes; a != nil {
		in.Enabled = a.Enabled
		if in.NotBefore, err = attrTime(a.NotBefore, "nbf"); err != nil {
			return err
		}
		if in.Expires, err = attrTime(a.Expires, "exp"); err != nil {
			return err
		}
	}
	s, err := c.api.opts.Vaults.SetSecret(c.ctx(), c.vault, name, in)
	if err != nil {
		return err
	}
	c.detail("version", s.Version)
	return c.replySecret(http.StatusOK, s)
}

// PATCH /secrets/{name}/{version?}: attributes only; 200 without value.
func updateSecret(c *call) error {
	name, err := c.secret()
	if err != nil {
		return err
	}
	var body struct {
		ContentType *string           `json:"contentType"`
		Attributes  *attributesBody   `json:"attributes"`
		Tags        map[string]string `json:"tags"`
	}
	if err := c.decode(&body); err != nil {
		return err
	}
	in := vault.UpdateInput{ContentType: body.ContentType, Tags: body.Tags}
	if a := body.Attributes; a != nil {
		in.Enabled = a.Enabled
		if a.NotBefore != nil {
			t, err := attrTime(a.NotBefore, "nbf")
			if err != nil {
				return err
			}
			in.NotBefore = &t
		}
		if a.Expires != nil {
			t, err := attrTime(a.Expires, "exp")
			if err != nil {
				return err
			}
			in.Expires = &t
		}
	}
	s, err := c.api.opts.Vaults.UpdateSecret(c.ctx(), c.vault, name, c.r.PathValue("version"), in)
	if err != nil {
		return err
	}
	c.detail("version", s.Version)
	return c.reply(http.StatusOK, view(c.vault, s, true))
}

// GET /secrets: live secrets with their latest attributes (ids without version).
func listSecrets(c *call) error {
	if err := c.authorize(c.vault.Scope()); err != nil {
		return err
	}
	after, limit, err := pageParams(c.r)
	if err != nil {
		return err
	}
	list, next, err := c.api.opts.Vaults.ListSecrets(c.ctx(), c.vault, after, limit)
	if err != nil {
		return err
	}
	out := listJSON{Value: make([]secretJSON, 0, len(list)), NextLink: nextLink(c.r, c.vault, "/secrets", next, limit)}
	for _, s := range list {
		out.Value = append(out.Value, view(c.vault, s, false))
	}
	return c.reply(http.StatusOK, out)
}

// GET /secrets/{name}/versions: every version (ids with version).
func listVersions(c *call) error {
	name, err := c.secret()
	if err != nil {
		return err
	}
	after, limit, err := pageParams(c.r)
	if err != nil {
		return err
	}
	list, next, err := c.api.opts.Vaults.ListVersions(c.ctx(), c.vault, name, after, limit)
	if err != nil {
		return err
	}
	out := listJSON{Value: make([]secretJSON, 0, len(list)),
		NextLink: nextLink(c.r, c.vault, "/secrets/"+list0Name(list, name)+"/versions", next, limit)}
	for _, s := range list {
		out.Value = append(out.Value, view(c.vault, s, true))
	}
	return c.reply(http.StatusOK, out)
}

func list0Name(list []*vault.Secret, name string) string {
	if len(list) > 0 {
		return list[0].Name
	}
	return name
}

// DELETE /secrets/{name}: 200 DeletedSecretBundle (recoveryId when recoverable).
func deleteSecret(c *call) error {
	name, err := c.secret()
	if err != nil {
		return err
	}
	s, err := c.api.opts.Vaults.DeleteSecret(c.ctx(), c.vault, name)
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, deletedView(c.vault, s, true))
}

// GET /deletedsecrets/{name}
func getDeleted(c *call) error {
	name, err := c.secret()
	if err != nil {
		return err
	}
	s, err := c.api.opts.Vaults.GetDeletedSecret(c.ctx(), c.vault, name)
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, deletedView(c.vault, s, true))
}

// GET /deletedsecrets
func listDeleted(c *call) error {
	if err := c.authorize(c.vault.Scope()); err != nil {
		return err
	}
	after, limit, err := pageParams(c.r)
	if err != nil {
		return err
	}
	list, next, err := c.api.opts.Vaults.ListDeletedSecrets(c.ctx(), c.vault, after, limit)
	if err != nil {
		return err
	}
	out := listJSON{Value: make([]secretJSON, 0, len(list)), NextLink: nextLink(c.r, c.vault, "/deletedsecrets", next, limit)}
	for _, s := range list {
		out.Value = append(out.Value, deletedView(c.vault, s, false))
	}
	return c.reply(http.StatusOK, out)
}

// POST /deletedsecrets/{name}/recover: 200 SecretBundle without value.
func recoverSecret(c *call) error {
	name, err := c.secret()
	if err != nil {
		return err
	}
	s, err := c.api.opts.Vaults.RecoverSecret(c.ctx(), c.vault, name)
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, view(c.vault, s, true))
}

// DELETE /deletedsecrets/{name}: 204, no body (Go and JS accept only 204).
func purgeSecret(c *call) error {
	name, err := c.secret()
	if err != nil {
		return err
	}
	if err := c.api.opts.Vaults.PurgeSecret(c.ctx(), c.vault, name); err != nil {
		return err
	}
	c.w.WriteHeader(http.StatusNoContent)
	return nil
}

// POST /secrets/{name}/backup: 200 {"value": unpadded base64url}.
func backupSecret(c *call) error {
	name, err := c.secret()
	if err != nil {
		return err
	}
	blob, err := c.api.opts.Vaults.BackupSecret(c.ctx(), c.vault, name)
	if err != nil {
		return err
	}
	c.w.Header().Set("Cache-Control", "no-store")
	return c.reply(http.StatusOK, map[string]string{"value": base64.RawURLEncoding.EncodeToString(blob)})
}

// POST /secrets/restore {"value": base64url}: 200 SecretBundle without
// value; 409 when the name exists. Authorized at the vault: the name is
// only known once the blob is opened.
func restoreSecret(c *call) error {
	if err := c.authorize(c.vault.Scope()); err != nil {
		return err
	}
	var body struct {
		Value *string `json:"value"`
	}
	if err := c.decode(&body); err != nil {
		return err
	}
	if body.Value == nil || *body.Value == "" {
		return gatehouse.BadRequestf(vault.CodeBadParameter, "The property 'value' (the backup blob) is required.").WithTarget("value")
	}
	blob, err := decodeBase64(*body.Value)
	if err != nil {
		return gatehouse.BadRequestf(vault.CodeBadParameter, "The backup blob is not base64url.").WithTarget("value")
	}
	s, err := c.api.opts.Vaults.RestoreSecret(c.ctx(), c.vault, blob)
	if err != nil {
		return err
	}
	c.detail("name", s.Name)
	return c.reply(http.StatusOK, view(c.vault, s, true))
}

// decodeBase64 accepts base64url or standard base64, padded or not.
func decodeBase64(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	if strings.ContainsAny(s, "+/") {
		return base64.RawStdEncoding.DecodeString(s)
	}
	return base64.RawURLEncoding.DecodeString(s)
}

// DataActions are the data actions the Key Vault API checks (the
// management API's operations catalog lists them).
func DataActions() []string {
	return []string{actGet, actMetadata, actSet, actUpdate, actDelete, actBackup, actRestore, actRecover, actPurge}
}
