package cli

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/app"
)

// `gatehouse backup` and `gatehouse restore` read and write the store
// directly, with serve's storage and key settings: they are operators'
// tools, run beside the nodes, not requests to a server.

func newBackupCmd(env Env) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "backup --file FILE",
		Short: "Write a consistent backup of the whole store while nodes keep serving",
		Long: `Write a consistent backup of the whole store — accounts and their keys,
vaults and secrets, the directory, role assignments, signing keys, the audit
log — as of one moment, while nodes keep serving.

Secrets and keys stay sealed by the master key in the backup, and the master
key is not in it: keep the key (<data-dir>/master.key, --master-key-file or
GATEHOUSE_MASTER_KEY) with the backup, stored apart from it. The file is
written with mode 0600 through a temporary file, so FILE is either the
complete backup or left as it was; --file - writes to standard output.

It takes the same storage settings as serve (--data-dir, --postgres,
GATEHOUSE_*). 'gatehouse restore' loads a backup into a new data directory
or an empty PostgreSQL database.`,
		Example: `  gatehouse backup --file gatehouse-$(date +%F).backup
  gatehouse backup --postgres "$DSN" --file - | gzip > gatehouse.backup.gz`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" {
				return fmt.Errorf("--file is required (a path, or - for standard output)")
			}
			cfg, err := loadConfig(cmd.Flags(), env)
			if err != nil {
				return err
			}
			var res app.BackupResult
			if file == "-" {
				res, err = app.Backup(cmd.Context(), cfg, env.Stdout, time.Now())
			} else {
				res, err = app.BackupToFile(cmd.Context(), cfg, file, time.Now())
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(env.Stderr, "backed up %s at revision %d: %d objects, %d audit entries, %d meta entries\n",
				res.Target, res.Revision, res.Counts.Objects, res.Counts.Audit, res.Counts.Meta)
			return nil
		},
	}
	cmd.Flags().StringVar(&file, "file", "", "backup file to write (- for standard output)")
	addConfigFlags(cmd.Flags(), storeSettings...) // values stay sealed: no key needed
	return cmd
}

func newRestoreCmd(env Env) *cobra.Command {
	var file string
	var verifyOnly bool
	cmd := &cobra.Command{
		Use:   "restore --file FILE",
		Short: "Load a backup into a new data directory or an empty PostgreSQL database",
		Long: `Load a backup written by 'gatehouse backup' into the configured store, which
must not have been served from: a new --data-dir, or an empty --postgres
database. Restoring a SQLite backup into PostgreSQL moves a deployment from
one node to several.

The master key must be the one the backup's values are sealed with
(<data-dir>/master.key of the node it came from — copy it into the new data
directory — or --master-key-file / GATEHOUSE_MASTER_KEY). Before anything is
kept, restore checks that the key matches, that it opens every sealed value
and that the audit log's chain verifies; the load is one transaction, so a
wrong key or a damaged or truncated file writes nothing.

Objects keep their revisions and times, so ETags, secret versions and the
audit chain carry over. Start the nodes on the restored store afterwards.

--verify-only makes every one of those checks and writes nothing, anywhere:
test each backup with it, and with the key you would restore it with.`,
		Example: `  gatehouse restore --file gatehouse.backup --data-dir /var/lib/gatehouse-new
  gatehouse restore --file gatehouse.backup --postgres "$DSN" --master-key-file ./gatehouse-data/master.key
  gatehouse restore --file gatehouse.backup --verify-only --master-key-file /secure/master.key`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" {
				return fmt.Errorf("--file is required (a path, or - for standard input)")
			}
			cfg, err := loadConfig(cmd.Flags(), env)
			if err != nil {
				return err
			}
			in := env.Stdin
			if file != "-" {
				f, err := os.Open(file)
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			}
			if verifyOnly {
				res, err := app.VerifyBackup(cmd.Context(), cfg, in)
				if err != nil {
					return err
				}
				fmt.Fprintf(env.Stdout, "the backup written %s (revision %d) verifies: %d objects, %d audit entries, %d meta entries; nothing was written\n",
					res.Written.Format(time.RFC3339), res.Revision, res.Counts.Objects, res.Counts.Audit, res.Counts.Meta)
				return nil
			}
			res, err := app.Restore(cmd.Context(), cfg, in)
			if err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "restored the backup written %s (revision %d) into %s: %d objects, %d audit entries, %d meta entries\n",
				res.Written.Format(time.RFC3339), res.Revision, res.Target, res.Counts.Objects, res.Counts.Audit, res.Counts.Meta)
			return nil
		},
	}
	cmd.Flags().StringVar(&file, "file", "", "backup file to load (- for standard input)")
	cmd.Flags().BoolVar(&verifyOnly, "verify-only", false, "check the backup and the master key as a restore would, and write nothing")
	addConfigFlags(cmd.Flags(), keySettings...)
	return cmd
}
