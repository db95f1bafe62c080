package vaulttest

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
)

// responseError returns the *azcore.ResponseError in err, failing if none.
func responseError(t *testing.T, err error) *azcore.ResponseError {
	t.Helper()
	re, ok := errors.AsType[*azcore.ResponseError](err)
	if !ok {
		t.Fatalf("want an HTTP error, got %v", err)
	}
	return re
}

func wantStatus(t *testing.T, err error, status int, code string) {
	t.Helper()
	re := responseError(t, err)
	if re.StatusCode != status || code != "" && re.ErrorCode != code {
		t.Fatalf("want %d %s, got %d %s: %v", status, code, re.StatusCode, re.ErrorCode, err)
	}
}

// testSDKSecrets: set, get (latest and by version), update, list, list
// versions with the official client.
func testSDKSecrets(t *testing.T, e *env) {
	ctx := t.Context()
	e.createVault(t, "sdk-secrets", nil)
	c := e.client(t, "sdk-secrets", e.cred)
	nbf := time.Now().Add(-time.Hour).Truncate(time.Second)
	exp := time.Now().Add(24 * time.Hour).Truncate(time.Second)
	set, err := c.SetSecret(ctx, "db-password", azsecrets.SetSecretParameters{Value: ptr("s3cr3t-one"),
		ContentType: ptr("text/plain"), Tags: map[string]*string{"env": ptr("dev")},
		SecretAttributes: &azsecrets.SecretAttributes{NotBefore: &nbf, Expires: &exp}}, nil)
	must(t, err)
	v1 := set.ID.Version()
	if *set.Value != "s3cr3t-one" || set.ID.Name() != "db-password" || len(v1) != 32 || strings.ToLower(v1) != v1 ||
		*set.ContentType != "text/plain" || *set.Tags["env"] != "dev" || !*set.Attributes.Enabled ||
		!set.Attributes.NotBefore.Equal(nbf) || !set.Attributes.Expires.Equal(exp) || set.Attributes.Created == nil ||
		*set.Attributes.RecoveryLevel != "Recoverable+Purgeable" || *set.Attributes.RecoverableDays != 90 {
		t.Fatalf("set: %+v %+v", set.Secret, set.Attributes)
	}
	if want := e.vaultURL("sdk-secrets") + "secrets/db-password/" + v1; string(*set.ID) != want {
		t.Fatalf("id %s, want %s", *set.ID, want)
	}
	set2, err := c.SetSecret(ctx, "db-password", azsecrets.SetSecretParameters{Value: ptr("s3cr3t-two")}, nil)
	must(t, err)
	v2 := set2.ID.Version()

	latest, err := c.GetSecret(ctx, "db-password", "", nil)
	must(t, err)
	if *latest.Value != "s3cr3t-two" || latest.ID.Version() != v2 {
		t.Fatalf("latest: %s %s", *latest.Value, *latest.ID)
	}
	old, err := c.GetSecret(ctx, "DB-PASSWORD", v1, nil) // names are case-insensitive
	must(t, err)
	if *old.Value != "s3cr3t-one" || old.ID.Version() != v1 || old.ID.Name() != "db-password" {
		t.Fatalf("v1: %s %s", *old.Value, *old.ID)
	}

	// Update the old version's attributes: disabled versions cannot be read.
	upd, err := c.UpdateSecretProperties(ctx, "db-password", v1, azsecrets.UpdateSecretPropertiesParameters{
		ContentType: ptr("application/x-old"), SecretAttributes: &azsecrets.SecretAttributes{Enabled: ptr(false)},
		Tags: map[string]*string{"rotated": ptr("yes")}}, nil)
	must(t, err)
	if upd.Value != nil || *upd.ContentType != "application/x-old" || *upd.Attributes.Enabled || *upd.Tags["rotated"] != "yes" {
		t.Fatalf("update: %+v", upd.Secret)
	}
	_, err = c.GetSecret(ctx, "db-password", v1, nil)
	wantStatus(t, err, http.StatusForbidden, "Forbidden")
	// Update of the latest with an empty version (trailing slash).
	if _, err := c.UpdateSecretProperties(ctx, "db-password", "", azsecrets.UpdateSecretPropertiesParameters{
		ContentType: ptr("text/x-latest")}, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.GetSecret(ctx, "db-password", "", nil); *got.ContentType != "text/x-latest" || *got.Value != "s3cr3t-two" {
		t.Fatalf("after update latest: %+v", got.Secret)
	}

	_, err = c.SetSecret(ctx, "api-key", azsecrets.SetSecretParameters{Value: ptr("k")}, nil)
	must(t, err)
	var names []string
	for pager := c.NewListSecretPropertiesPager(nil); pager.More(); {
		page, err := pager.NextPage(ctx)
		must(t, err)
		for _, p := range page.Value {
			if p.ID.Version() != "" {
				t.Errorf("list item carries a version: %s", *p.ID)
			}
			names = append(names, p.ID.Name())
		}
	}
	if !slices.Equal(names, []string{"api-key", "db-password"}) {
		t.Fatalf("list: %v", names)
	}
	var versions []string
	for pager := c.NewListSecretPropertiesVersionsPager("db-password", nil); pager.More(); {
		page, err := pager.NextPage(ctx)
		must(t, err)
		for _, p := range page.Value {
			versions = append(versions, p.ID.Version())
		}
	}
	slices.Sort(versions)
	want := []string{v1, v2}
	slices.Sort(want)
	if !slices.Equal(versions, want) {
		t.Fatalf("versions %v, want %v", versions, want)
	}

	_, err = c.GetSecret(ctx, "missing", "", nil)
	wantStatus(t, err, http.StatusNotFound, "SecretNotFound")
	_, err = c.GetSecret(ctx, "db-password", strings.Repeat("0", 32), nil)
	wantStatus(t, err, http.StatusNotFound, "SecretNotFound")
}

// testSDKDeleteRecoverPurge: delete, get deleted, list deleted, set on a
// deleted name, recover, delete again and purge.
func testSDKDeleteRecoverPurge(t *testing.T, e *env) {
	ctx := t.Context()
	e.createVault(t, "sdk-delete", map[string]any{"softDeleteRetentionInDays": 7})
	c := e.client(t, "sdk-delete", e.cred)
	set, err := c.SetSecret(ctx, "to-delete", azsecrets.SetSecretParameters{Value: ptr("bye")}, nil)
	must(t, err)
	before := time.Now().Add(-time.Minute)
	del, err := c.DeleteSecret(ctx, "to-delete", nil)
	must(t, err)
	if del.Value != nil || *del.RecoveryID != e.vaultURL("sdk-delete")+"deletedsecrets/to-delete" || del.DeletedDate.Before(before) ||
		del.ScheduledPurgeDate.Sub(*del.DeletedDate) != 7*24*time.Hour || *del.ID != *set.ID ||
		*del.Attributes.RecoveryLevel != "CustomizedRecoverable+Purgeable" || *del.Attributes.RecoverableDays != 7 {
		t.Fatalf("delete: %+v %+v", del.DeletedSecret, del.Attributes)
	}
	_, err = c.GetSecret(ctx, "to-delete", "", nil)
	wantStatus(t, err, http.StatusNotFound, "SecretNotFound")
	_, err = c.GetSecret(ctx, "to-delete", set.ID.Version(), nil)
	wantStatus(t, err, http.StatusNotFound, "SecretNotFound")
	// A deleted secret, like a name that never was, lists no versions (200,
	// an empty list: what the SDKs' pagers expect from Azure).
	for _, name := range []string{"to-delete", "never-was"} {
		n := 0
		for pager := c.NewListSecretPropertiesVersionsPager(name, nil); pager.More(); {
			page, err := pager.NextPage(ctx)
			must(t, err)
			n += len(page.Value)
		}
		if n != 0 {
			t.Fatalf("versions of %s: %d", name, n)
		}
	}
	got, err := c.GetDeletedSecret(ctx, "to-delete", nil)
	must(t, err)
	if *got.RecoveryID != *del.RecoveryID || got.Value != nil {
		t.Fatalf("get deleted: %+v", got.DeletedSecret)
	}
	var deleted []string
	for pager := c.NewListDeletedSecretPropertiesPager(nil); pager.More(); {
		page, err := pager.NextPage(ctx)
		must(t, err)
		for _, p := range page.Value {
			deleted = append(deleted, p.ID.Name())
			if p.RecoveryID == nil || p.DeletedDate == nil || p.ScheduledPurgeDate == nil {
				t.Errorf("deleted item: %+v", p)
			}
		}
	}
	if !slices.Equal(deleted, []string{"to-delete"}) {
		t.Fatalf("list deleted: %v", deleted)
	}
	_, err = c.SetSecret(ctx, "to-delete", azsecrets.SetSecretParameters{Value: ptr("again")}, nil)
	wantStatus(t, err, http.StatusConflict, "Conflict")
	_, err = c.DeleteSecret(ctx, "to-delete", nil)
	wantStatus(t, err, http.StatusNotFound, "SecretNotFound")

	rec, err := c.RecoverDeletedSecret(ctx, "to-delete", nil)
	must(t, err)
	if rec.ID.Version() != set.ID.Version() || rec.Value != nil {
		t.Fatalf("recover: %+v", rec.Secret)
	}
	back, err := c.GetSecret(ctx, "to-delete", "", nil)
	must(t, err)
	if *back.Value != "bye" {
		t.Fatalf("recovered value %q", *back.Value)
	}
	_, err = c.GetDeletedSecret(ctx, "to-delete", nil)
	wantStatus(t, err, http.StatusNotFound, "SecretNotFound")

	_, err = c.DeleteSecret(ctx, "to-delete", nil)
	must(t, err)
	_, err = c.PurgeDeletedSecret(ctx, "to-delete", nil)
	must(t, err)
	_, err = c.GetDeletedSecret(ctx, "to-delete", nil)
	wantStatus(t, err, http.StatusNotFound, "SecretNotFound")
	_, err = c.PurgeDeletedSecret(ctx, "to-delete", nil)
	wantStatus(t, err, http.StatusNotFound, "SecretNotFound")
	// The name is free again, and the new secret has no old versions.
	fresh, err := c.SetSecret(ctx, "to-delete", azsecrets.SetSecretParameters{Value: ptr("new")}, nil)
	must(t, err)
	n := 0
	for pager := c.NewListSecretPropertiesVersionsPager("to-delete", nil); pager.More(); {
		page, err := pager.NextPage(ctx)
		must(t, err)
		n += len(page.Value)
	}
	if n != 1 || fresh.ID.Version() == set.ID.Version() {
		t.Fatalf("after purge: %d versions", n)
	}
}

// testSDKBackupRestore: backup, purge, restore (same versions), 409 when
// the name exists, a tampered blob is refused.
func testSDKBackupRestore(t *testing.T, e *env) {
	ctx := t.Context()
	e.createVault(t, "sdk-backup", nil)
	c := e.client(t, "sdk-backup", e.cred)
	s1, err := c.SetSecret(ctx, "conn", azsecrets.SetSecretParameters{Value: ptr("first"), Tags: map[string]*string{"a": ptr("1")}}, nil)
	must(t, err)
	s2, err := c.SetSecret(ctx, "conn", azsecrets.SetSecretParameters{Value: ptr("second"), ContentType: ptr("text/plain")}, nil)
	must(t, err)
	b, err := c.BackupSecret(ctx, "conn", nil)
	must(t, err)
	if len(b.Value) < 64 {
		t.Fatalf("backup blob of %d bytes", len(b.Value))
	}
	if strings.Contains(string(b.Value), "first") || strings.Contains(string(b.Value), "second") {
		t.Fatal("the backup blob holds a value in plaintext")
	}
	_, err = c.RestoreSecret(ctx, azsecrets.RestoreSecretParameters{SecretBackup: b.Value}, nil)
	wantStatus(t, err, http.StatusConflict, "Conflict")

	_, err = c.DeleteSecret(ctx, "conn", nil)
	must(t, err)
	_, err = c.RestoreSecret(ctx, azsecrets.RestoreSecretParameters{SecretBackup: b.Value}, nil)
	wantStatus(t, err, http.StatusConflict, "Conflict") // deleted but not purged: the name is taken
	if !strings.Contains(err.Error(), "deleted but recoverable state") {
		t.Errorf("restore over a deleted secret says: %v", err)
	}
	_, err = c.PurgeDeletedSecret(ctx, "conn", nil)
	must(t, err)

	tampered := append([]byte(nil), b.Value...)
	tampered[len(tampered)/2] ^= 1
	_, err = c.RestoreSecret(ctx, azsecrets.RestoreSecretParameters{SecretBackup: tampered}, nil)
	wantStatus(t, err, http.StatusBadRequest, "BadParameter")

	r, err := c.RestoreSecret(ctx, azsecrets.RestoreSecretParameters{SecretBackup: b.Value}, nil)
	must(t, err)
	if *r.ID != *s2.ID || r.Value != nil {
		t.Fatalf("restore: %+v", r.Secret)
	}
	g1, err := c.GetSecret(ctx, "conn", s1.ID.Version(), nil)
	must(t, err)
	g2, err := c.GetSecret(ctx, "conn", "", nil)
	must(t, err)
	if *g1.Value != "first" || *g1.Tags["a"] != "1" || *g2.Value != "second" || *g2.ContentType != "text/plain" {
		t.Fatalf("restored: %+v %+v", g1.Secret, g2.Secret)
	}

	// Restore into another vault of the same deployment.
	e.createVault(t, "sdk-backup-2", nil)
	c2 := e.client(t, "sdk-backup-2", e.cred)
	r2, err := c2.RestoreSecret(ctx, azsecrets.RestoreSecretParameters{SecretBackup: b.Value}, nil)
	must(t, err)
	if r2.ID.Version() != s2.ID.Version() || !strings.HasPrefix(string(*r2.ID), e.vaultURL("sdk-backup-2")) {
		t.Fatalf("restore elsewhere: %s", *r2.ID)
	}
}

// testSDKPaging: more secrets than a page, followed through nextLinks the
// server builds (the Go client never adds api-version to them).
func testSDKPaging(t *testing.T, e *env) {
	ctx := t.Context()
	e.createVault(t, "sdk-paging", nil)
	c := e.client(t, "sdk-paging", e.cred)
	const n = 30
	for i := range n {
		_, err := c.SetSecret(ctx, "s"+strings.Repeat("x", i%3)+"-"+string(rune('a'+i%26))+string(rune('a'+i/26)),
			azsecrets.SetSecretParameters{Value: ptr("v")}, nil)
		must(t, err)
	}
	for range 27 {
		_, err := c.SetSecret(ctx, "many-versions", azsecrets.SetSecretParameters{Value: ptr("v")}, nil)
		must(t, err)
	}
	pages, items := 0, map[string]bool{}
	for pager := c.NewListSecretPropertiesPager(nil); pager.More(); {
		page, err := pager.NextPage(ctx)
		must(t, err)
		pages++
		for _, p := range page.Value {
			if items[p.ID.Name()] {
				t.Fatalf("%s listed twice", p.ID.Name())
			}
			items[p.ID.Name()] = true
		}
	}
	if len(items) != n+1 || pages != 2 {
		t.Fatalf("listed %d secrets in %d pages", len(items), pages)
	}
	versions := 0
	pages = 0
	for pager := c.NewListSecretPropertiesVersionsPager("many-versions", nil); pager.More(); {
		page, err := pager.NextPage(ctx)
		must(t, err)
		pages++
		versions += len(page.Value)
	}
	if versions != 27 || pages != 2 {
		t.Fatalf("listed %d versions in %d pages", versions, pages)
	}
}
