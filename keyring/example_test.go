package keyring_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/gatehouse/gatehouse/keyring"
)

// The embedded default: the key file lives in the data directory and is
// created on first start; the database check runs at every start.
func Example() {
	ctx := context.Background()
	dataDir, _ := os.MkdirTemp("", "gatehouse")
	defer os.RemoveAll(dataDir)
	db := newMemStore() // a storage.Store in the server

	keys, created, err := keyring.LoadOrCreateFile(filepath.Join(dataDir, "master.key"), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	if created {
		fmt.Println("generated a master key; production should supply GATEHOUSE_MASTER_KEY or --master-key-file")
	}
	kr, err := keyring.Open(ctx, db, keys, keyring.Options{})
	if err != nil {
		log.Fatal(err) // e.g. "master key version 1 does not match this database ..."
	}

	aad := keyring.AAD("secret", "vault-a/db-password")
	sealed, _ := kr.Seal([]byte("hunter2"), aad)
	db.putBlob("secret", "vault-a/db-password", sealed)

	// Rotation: add version 2 to the file, load it, rotate.
	k2, _ := keyring.AppendVersionToFile(filepath.Join(dataDir, "master.key"), rand.Reader)
	if err := kr.AddKeys(ctx, db, k2); err != nil {
		log.Fatal(err)
	}
	rot, err := kr.Rotate(ctx, db)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("rotated from version %d to %d; %d value(s) re-wrapped\n", rot.From, rot.To, rot.Rewrapped)

	value, _ := kr.Open(db.blob("secret", "vault-a/db-password"), aad)
	fmt.Println(string(value))
	// Output:
	// generated a master key; production should supply GATEHOUSE_MASTER_KEY or --master-key-file
	// rotated from version 1 to 2; 1 value(s) re-wrapped
	// hunter2
}

func ExampleParse() {
	keys, err := keyring.Parse("1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=,2:ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoM=")
	fmt.Println(keys, err)
	_, err = keyring.Parse("1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=,1:ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoM=")
	fmt.Println(err)
	// Output:
	// [keyring.Key{version: 1} keyring.Key{version: 2}] <nil>
	// keyring: master key line 1, entry 2: version 1 is defined twice (first at line 1, entry 1)
}
