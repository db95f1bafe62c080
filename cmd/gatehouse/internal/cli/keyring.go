package cli

import (
	"crypto/rand"
	"fmt"

	"github.com/gatehouse/gatehouse/cmd/gatehouse/internal/app"
	"github.com/spf13/cobra"
)

func newKeyringCmd(env Env) *cobra.Command {
	group := &cobra.Command{
		Use:   "keyring",
		Short: "Manage the master keys that seal data at rest",
	}
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Activate a new master key version and re-wrap every sealed value under it",
		Long: `Activate a new master key version and re-wrap every sealed value under it,
while nodes keep serving.

With the generated key file (<data-dir>/master.key) a new version is appended
to it. With --master-key-file or GATEHOUSE_MASTER_KEY, first add the new
version (N:<base64 32 bytes>, e.g. from 'openssl rand -base64 32') to the key
source of every node and restart them one by one; then run rotate. Older
versions stay readable; remove one only after rotate has finished.

It takes the same storage and key settings as serve (--data-dir, --postgres,
--master-key-file, GATEHOUSE_*).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(cmd.Flags(), env)
			if err != nil {
				return err
			}
			rot, err := app.RotateMasterKey(cmd.Context(), cfg, rand.Reader)
			if err != nil {
				return err
			}
			if rot.From == rot.To {
				fmt.Fprintf(env.Stdout, "master key version %d was already active; re-wrapped %d values still under older versions\n", rot.To, rot.Rewrapped)
			} else {
				fmt.Fprintf(env.Stdout, "master key rotated from version %d to %d; re-wrapped %d values\n", rot.From, rot.To, rot.Rewrapped)
			}
			return nil
		},
	}
	addConfigFlags(rotate.Flags(), keySettings...)
	group.AddCommand(rotate)
	return group
}
