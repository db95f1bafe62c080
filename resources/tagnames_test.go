package resources_test

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/teststore"
	"github.com/gatehouse/gatehouse/resources"
	"github.com/gatehouse/gatehouse/storage"
)

func TestPredefinedTags(t *testing.T) {
	teststore.Run(t, func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		svc := resources.New(s, resources.Options{})
		const sub, other = "00000000-0000-0000-0000-00000000000a", "00000000-0000-0000-0000-00000000000b"
		status := func(err error) int {
			t.Helper()
			if err == nil {
				return 0
			}
			if _, ok := gatehouse.AsError(err); !ok {
				t.Fatalf("not a *gatehouse.Error: %v", err)
			}
			return gatehouse.ErrorStatus(err)
		}
		for _, name := range []string{"", " ", "\t ", "a/b", "a<b", "100%", "a\x00b", "a\nb", "Microsoft.x", "azureThing", "WINDOWS", strings.Repeat("n", 513), "\xff"} {
			if _, _, err := svc.PutTagName(ctx, sub, name, "me"); status(err) != 400 {
				t.Errorf("tag name %q: %v", name, err)
			}
		}
		tn, created, err := svc.PutTagName(ctx, sub, "CostCenter", "me")
		if err != nil || !created || tn.Name != "CostCenter" || tn.CreatedBy != "me" || tn.CreatedOn.IsZero() {
			t.Fatalf("put: %+v %v %v", tn, created, err)
		}
		// Names compare case-insensitively: the first spelling stays.
		if tn, created, err := svc.PutTagName(ctx, sub, "costcenter", "you"); err != nil || created || tn.Name != "CostCenter" {
			t.Fatalf("put again in another case: %+v %v %v", tn, created, err)
		}
		if _, _, err := svc.PutTagName(ctx, sub, strings.Repeat("é", 512), "me"); err != nil {
			t.Fatalf("512 characters (1,024 bytes): %v", err)
		}
		if _, _, err := svc.PutTagName(ctx, other, "env", "me"); err != nil {
			t.Fatal(err)
		}

		for _, v := range []string{"", "  ", "a\x00", strings.Repeat("v", 257), "\xfe"} {
			if _, _, err := svc.PutTagValue(ctx, sub, "CostCenter", v); status(err) != 400 {
				t.Errorf("value %q: %v", v, err)
			}
		}
		if _, _, err := svc.PutTagValue(ctx, sub, "nope", "x"); status(err) != 404 {
			t.Errorf("value of a name not predefined: %v", err)
		}
		if _, _, err := svc.PutTagValue(ctx, other, "CostCenter", "x"); status(err) != 404 {
			t.Errorf("value of another subscription's name: %v", err)
		}
		// Concurrent adds of values all land (Update is atomic).
		var wg sync.WaitGroup
		for _, v := range []string{"1001", "1002", "1003", "1004", "Finance"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, created, err := svc.PutTagValue(ctx, sub, "COSTCENTER", v); err != nil || !created {
					t.Errorf("value %s: %v %v", v, created, err)
				}
			}()
		}
		wg.Wait()
		if _, created, err := svc.PutTagValue(ctx, sub, "costCenter", "1001"); err != nil || created {
			t.Fatalf("value again: %v %v", created, err)
		}
		if _, created, err := svc.PutTagValue(ctx, sub, "costCenter", "finance"); err != nil || !created {
			t.Fatalf("values compare exactly: %v %v", created, err)
		}
		names, err := svc.TagNames(ctx, sub)
		if err != nil || len(names) != 2 || names[0].Name != "CostCenter" || strings.Join(names[0].Values, ",") != "1001,1002,1003,1004,Finance,finance" {
			t.Fatalf("names: %v %v", names, err)
		}

		never := func() (bool, error) { t.Fatal("in-use asked needlessly"); return false, nil }
		yes := func() (bool, error) { return true, nil }
		no := func() (bool, error) { return false, nil }
		if _, err := svc.DeleteTagName(ctx, sub, "costcenter", never); status(err) != 409 {
			t.Fatalf("delete of a name with values: %v", err)
		}
		if ok, err := svc.DeleteTagValue(ctx, sub, "CostCenter", "9999", never); err != nil || ok {
			t.Fatalf("delete of a value not predefined: %v %v", ok, err)
		}
		if _, err := svc.DeleteTagValue(ctx, sub, "nope", "1", never); status(err) != 404 {
			t.Fatalf("delete of a value of a name not predefined: %v", err)
		}
		if _, err := svc.DeleteTagValue(ctx, sub, "CostCenter", "1001", yes); status(err) != 409 {
			t.Fatalf("delete of a value in use: %v", err)
		}
		failing := errors.New("store down")
		if _, err := svc.DeleteTagValue(ctx, sub, "CostCenter", "1001", func() (bool, error) { return false, failing }); !errors.Is(err, failing) {
			t.Fatalf("in-use check failing: %v", err)
		}
		for _, v := range []string{"1001", "1002", "1003", "1004", "Finance", "finance"} {
			if ok, err := svc.DeleteTagValue(ctx, sub, "costcenter", v, no); err != nil || !ok {
				t.Fatalf("delete value %s: %v %v", v, ok, err)
			}
		}
		if _, err := svc.DeleteTagName(ctx, sub, "CostCenter", yes); status(err) != 409 {
			t.Fatalf("delete of a name in use: %v", err)
		}
		if ok, err := svc.DeleteTagName(ctx, sub, "COSTCENTER", no); err != nil || !ok {
			t.Fatalf("delete: %v %v", ok, err)
		}
		if ok, err := svc.DeleteTagName(ctx, sub, "CostCenter", never); err != nil || ok {
			t.Fatalf("delete again: %v %v", ok, err)
		}
		if names, err := svc.TagNames(ctx, sub); err != nil || len(names) != 1 {
			t.Fatalf("names after the delete: %v %v", names, err)
		}
		if names, err := svc.TagNames(ctx, other); err != nil || len(names) != 1 || names[0].Name != "env" {
			t.Fatalf("the other subscription's: %v %v", names, err)
		}
		// A delete interrupted after it was decided: the name counts as
		// gone, a delete finishes it, a put starts it afresh.
		table := storage.NewTable[resources.TagName](s, resources.KindTagName)
		for _, name := range []string{"stuck1", "stuck2"} {
			if _, err := table.Create(ctx, &storage.Record[resources.TagName]{Key: sub + "/" + name, Ref: sub,
				Value: resources.TagName{Subscription: sub, Name: name, Values: []string{"old"}, Deleting: true}}); err != nil {
				t.Fatal(err)
			}
		}
		if names, err := svc.TagNames(ctx, sub); err != nil || len(names) != 1 {
			t.Fatalf("names with deletes under way: %v %v", names, err)
		}
		if _, _, err := svc.PutTagValue(ctx, sub, "stuck1", "x"); status(err) != 404 {
			t.Fatalf("value of a name being deleted: %v", err)
		}
		if ok, err := svc.DeleteTagName(ctx, sub, "stuck1", never); err != nil || !ok {
			t.Fatalf("delete finishing an interrupted one: %v %v", ok, err)
		}
		if tn, created, err := svc.PutTagName(ctx, sub, "Stuck2", "me"); err != nil || !created || tn.Name != "Stuck2" || len(tn.Values) != 0 {
			t.Fatalf("put over an interrupted delete: %+v %v %v", tn, created, err)
		}
		if _, err := svc.DeleteTagName(ctx, sub, "stuck2", no); err != nil {
			t.Fatal(err)
		}

		// A name can be predefined again once deleted, with a new spelling.
		if tn, created, err := svc.PutTagName(ctx, sub, "costcenter", "me"); err != nil || !created || tn.Name != "costcenter" || len(tn.Values) != 0 {
			t.Fatalf("put after delete: %+v %v %v", tn, created, err)
		}
	})
}
