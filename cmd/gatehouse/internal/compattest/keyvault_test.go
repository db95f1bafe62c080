package compattest

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// secretResult is keyvault.mjs' view of a KeyVaultSecret (props plus
// value) or of a DeletedSecret.
type secretResult struct {
	Value              string            `json:"value"`
	ID                 string            `json:"id"`
	Name               string            `json:"name"`
	Version            string            `json:"version"`
	Enabled            bool              `json:"enabled"`
	ContentType        string            `json:"contentType"`
	Tags               map[string]string `json:"tags"`
	CreatedOn          *time.Time        `json:"createdOn"`
	UpdatedOn          *time.Time        `json:"updatedOn"`
	NotBefore          *time.Time        `json:"notBefore"`
	ExpiresOn          *time.Time        `json:"expiresOn"`
	RecoveryLevel      string            `json:"recoveryLevel"`
	RecoverableDays    int               `json:"recoverableDays"`
	VaultURL           string            `json:"vaultUrl"`
	RecoveryID         string            `json:"recoveryId"`
	DeletedOn          *time.Time        `json:"deletedOn"`
	ScheduledPurgeDate *time.Time        `json:"scheduledPurgeDate"`
}

// testKeyVault: SecretClient, authenticated by DefaultAzureCredential from
// the environment (tenant adfs, the challenge's tenant), runs every secret
// operation — set, get by version, update, list with paging, backup,
// delete and its poller, recover and its poller, purge, restore — and gets
// Key Vault's errors.
func testKeyVault(t *testing.T, e *env) {
	vars := e.identityEnv(e.app)
	vars["KEYVAULT_URL"] = e.vaultURL
	s := e.node(t, vars, "keyvault.mjs", "full")
	const name = "compat-secret"
	vault := strings.TrimSuffix(e.vaultURL, "/")

	var set, set2, latest, old, upd secretResult
	s.value(t, "set", &set)
	if set.Value != "value-one" || set.Name != name || len(set.Version) != 32 || set.ID != vault+"/secrets/"+name+"/"+set.Version ||
		set.VaultURL != vault || set.ContentType != "text/plain" || set.Tags["env"] != "ci" || !set.Enabled ||
		set.NotBefore == nil || set.ExpiresOn == nil || set.CreatedOn == nil || set.RecoveryLevel != "Recoverable+Purgeable" ||
		set.RecoverableDays != 90 {
		t.Fatalf("set: %+v", set)
	}
	if time.Until(*set.NotBefore) > -59*time.Minute || time.Until(*set.ExpiresOn) < 23*time.Hour {
		t.Errorf("set: notBefore %v expiresOn %v", set.NotBefore, set.ExpiresOn)
	}
	s.value(t, "set-again", &set2)
	s.value(t, "get-latest", &latest)
	s.value(t, "get-version", &old)
	if set2.Version == set.Version || latest.Value != "value-two" || latest.Version != set2.Version ||
		old.Value != "value-one" || old.Version != set.Version {
		t.Fatalf("versions: set2 %+v latest %+v old %+v", set2, latest, old)
	}
	s.value(t, "update", &upd)
	if upd.Enabled || upd.Tags["rotated"] != "yes" || upd.Version != set.Version {
		t.Fatalf("update: %+v", upd)
	}
	if err := s.err(t, "get-disabled"); err.StatusCode != 403 || err.Code != "Forbidden" {
		t.Errorf("get a disabled version: %s", err)
	}

	var list []secretResult
	s.value(t, "list", &list)
	var names []string
	for _, p := range list {
		names = append(names, p.Name)
		if p.Value != "" || p.Version != "" {
			t.Errorf("list item carries a value or version: %+v", p)
		}
	}
	for _, want := range []string{name, "compat-other-1", "compat-other-2"} {
		if !slices.Contains(names, want) {
			t.Errorf("list: %v lacks %s", names, want)
		}
	}
	var pages [][]string
	s.value(t, "list-pages", &pages)
	// The managed-identity scenario writes to this vault meanwhile, so the
	// pages are checked for this scenario's secrets, not against list's
	// count.
	var paged []string
	for _, p := range pages {
		if len(p) != 1 {
			t.Errorf("page of %d items with maxPageSize 1", len(p))
		}
		paged = append(paged, p...)
	}
	for _, want := range []string{name, "compat-other-1", "compat-other-2"} {
		if !slices.Contains(paged, want) {
			t.Errorf("maxPageSize 1: pages %v lack %s", pages, want)
		}
	}
	var versions []secretResult
	s.value(t, "list-versions", &versions)
	if len(versions) != 2 {
		t.Errorf("versions: %+v", versions)
	}
	var backup struct{ Length int }
	s.value(t, "backup", &backup)
	if backup.Length == 0 {
		t.Error("empty backup")
	}

	var del, gotDeleted secretResult
	s.value(t, "delete", &del)
	if del.RecoveryID != vault+"/deletedsecrets/"+name || del.DeletedOn == nil || del.ScheduledPurgeDate == nil || del.Value != "" {
		t.Fatalf("delete: %+v", del)
	}
	if d := del.ScheduledPurgeDate.Sub(*del.DeletedOn); d != 90*24*time.Hour {
		t.Errorf("scheduled purge %v after deletion", d)
	}
	s.value(t, "get-deleted", &gotDeleted)
	var deletedList []secretResult
	s.value(t, "list-deleted", &deletedList)
	if gotDeleted.RecoveryID != del.RecoveryID || !slices.ContainsFunc(deletedList, func(d secretResult) bool { return d.Name == name }) {
		t.Errorf("deleted: %+v in %+v", gotDeleted, deletedList)
	}
	if err := s.err(t, "set-while-deleted"); err.StatusCode != 409 || err.Code != "Conflict" {
		t.Errorf("set while deleted: %s", err)
	}
	if err := s.err(t, "get-while-deleted"); err.StatusCode != 404 || err.Code != "SecretNotFound" {
		t.Errorf("get while deleted: %s", err)
	}
	var rec, recovered secretResult
	s.value(t, "recover", &rec)
	s.value(t, "get-recovered", &recovered)
	if rec.Name != name || recovered.Value != "value-two" {
		t.Errorf("recover: %+v then %+v", rec, recovered)
	}
	s.value(t, "delete-again", nil)
	s.value(t, "purge", nil)
	if err := s.err(t, "get-purged"); err.StatusCode != 404 || err.Code != "SecretNotFound" {
		t.Errorf("get purged: %s", err)
	}
	var restored, afterRestore secretResult
	s.value(t, "restore", &restored)
	s.value(t, "get-restored", &afterRestore)
	if restored.Name != name || afterRestore.Value != "value-two" {
		t.Errorf("restore: %+v then %+v", restored, afterRestore)
	}
	if err := s.err(t, "restore-existing"); err.StatusCode != 409 {
		t.Errorf("restore over an existing secret: %s", err)
	}
	if err := s.err(t, "get-missing"); err.StatusCode != 404 || err.Code != "SecretNotFound" {
		t.Errorf("get missing: %s", err)
	}
}
