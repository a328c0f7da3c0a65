package chatmodule

import (
	"fmt"

	"github.com/pocketbase/pocketbase/core"
	"github.com/spf13/cobra"

	"github.com/pbchat/pbchat/internal/chat"
	"github.com/pbchat/pbchat/migrations"
)

func newChatCommand(app core.App, settings chat.Settings) *cobra.Command {
	command := &cobra.Command{
		Use:   "chat",
		Short: "pbchat: demo data and statistics",
	}
	command.AddCommand(&cobra.Command{
		Use:          "demo",
		Short:        "Fill the data dir with demo users, rooms and messages",
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := prepare(app, settings); err != nil {
				return err
			}
			created, err := SeedDemo(app, settings)
			if err != nil {
				return err
			}
			if !created {
				fmt.Fprintln(cmd.OutOrStdout(), "Demo data is already there.")
			}
			fmt.Fprint(cmd.OutOrStdout(), DemoLogins)
			return nil
		},
	})
	command.AddCommand(&cobra.Command{
		Use:          "stats",
		Short:        "Print how many rooms, members, messages, media and reactions there are",
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := prepare(app, settings); err != nil {
				return err
			}
			for _, name := range append([]string{settings.UsersCollection}, migrations.AllCollections...) {
				n, err := app.CountRecords(name)
				if err != nil {
					return fmt.Errorf("count %s: %w", name, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%-24s %d\n", name, n)
			}
			return nil
		},
	})
	return command
}
