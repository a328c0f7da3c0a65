package chatmodule

import (
	"fmt"
	"io"

	"github.com/pocketbase/pocketbase/core"
	"github.com/spf13/cobra"

	"github.com/pbchat/pbchat/demo"
	"github.com/pbchat/pbchat/internal/chat"
	"github.com/pbchat/pbchat/migrations"
)

// newChatCommand is `chat`: `chat demo` and `chat stats`.
func newChatCommand(app core.App, settings chat.Settings) *cobra.Command {
	command := &cobra.Command{
		Use:   "chat",
		Short: "pbchat: demo data and statistics",
	}
	command.AddCommand(
		chatSubcommand(app, settings, "demo", "Fill the data dir with demo users, rooms and messages", seedDemo),
		chatSubcommand(app, settings, "stats", "Print how many rooms, members, messages, media and reactions there are", printStats),
	)
	return command
}

// chatSubcommand is a `chat` subcommand that runs run on the app once its
// schema is up to date.
func chatSubcommand(app core.App, settings chat.Settings, use, short string, run func(core.App, chat.Settings, io.Writer) error) *cobra.Command {
	return &cobra.Command{
		Use:          use,
		Short:        short,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := prepare(app, settings); err != nil {
				return err
			}
			return run(app, settings, cmd.OutOrStdout())
		},
	}
}

// prepare brings a bootstrapped app's schema up to date outside of serve.
func prepare(app core.App, settings chat.Settings) error {
	if err := app.RunAllMigrations(); err != nil {
		return fmt.Errorf("pocketbase migrations: %w", err)
	}
	return migrations.Run(app, settings)
}

// seedDemo is `chat demo`.
func seedDemo(app core.App, settings chat.Settings, out io.Writer) error {
	created, err := demo.Seed(app, settings)
	if err != nil {
		return err
	}
	status := ""
	if !created {
		status = "Demo data is already there.\n"
	}
	_, err = fmt.Fprint(out, status+demo.Logins)
	return err
}

// printStats is `chat stats`.
func printStats(app core.App, settings chat.Settings, out io.Writer) error {
	for _, name := range append([]string{settings.UsersCollection}, chat.Collections[:]...) {
		n, err := app.CountRecords(name)
		if err != nil {
			return fmt.Errorf("count %s: %w", name, err)
		}
		if _, err := fmt.Fprintf(out, "%-24s %d\n", name, n); err != nil {
			return err
		}
	}
	return nil
}
