package audit_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/audit"
)

var (
	// c.detail("name", …) in armapi and kvapi.
	detailCall = regexp.MustCompile(`\.detail\("([^"]+)"`)
	// details["name"] = … and details := map[string]string{"name": …}.
	detailIndex = regexp.MustCompile(`details\["([^"]+)"\]\s*=`)
	detailMap   = regexp.MustCompile(`details\s*:?=\s*map\[string\]string\{([^}]*)\}`)
	mapKey      = regexp.MustCompile(`"([^"]+)"\s*:`)
)

// TestRecordedDetailsAreAllowed reads the module's sources for the detail
// names they record and wants each in AllowedDetails: Append refuses an
// entry with any other name and its caller can only log that, so a name
// missing there loses every entry of its action (a lock's "level" and a
// federated credential's "issuer" and "subject" did, until this test).
func TestRecordedDetailsAreAllowed(t *testing.T) {
	found := map[string]string{}
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".")) && path != ".." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range detailCall.FindAllSubmatch(src, -1) {
			found[string(m[1])] = path
		}
		for _, m := range detailIndex.FindAllSubmatch(src, -1) {
			found[string(m[1])] = path
		}
		for _, m := range detailMap.FindAllSubmatch(src, -1) {
			for _, k := range mapKey.FindAllSubmatch(m[1], -1) {
				found[string(k[1])] = path
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The patterns must still find what the code records.
	for _, want := range []string{"keyName", "reason", "roleDefinitionId", "clientAddress", "version"} {
		if _, ok := found[want]; !ok {
			t.Errorf("no source records the detail %q: the patterns have gone stale", want)
		}
	}
	for name, path := range found {
		if !audit.AllowedDetails[name] {
			t.Errorf("%s records the detail %q, which is not in audit.AllowedDetails", path, name)
		}
	}
}
