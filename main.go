// Command pbchat is a ready PocketBase app with pbchat: `serve` runs it on
// the embedded SQLite database, `chat demo` fills it with demo data.
package main

import (
	"log"
	"os"
	"strings"

	"github.com/pocketbase/pocketbase"
	"github.com/pocketbase/pocketbase/plugins/migratecmd"

	"github.com/pbchat/pbchat/chatmodule"
)

func main() {
	// A realtime node opens no database: it runs outside PocketBase's commands.
	if len(os.Args) > 1 && os.Args[1] == "realtime" {
		command := chatmodule.NewRealtimeCommand()
		command.SetArgs(os.Args[2:])
		if err := command.Execute(); err != nil {
			os.Exit(1)
		}
		return
	}

	// Not PocketBase's dev mode even under `go run`: it logs every SQL statement.
	app := pocketbase.NewWithConfig(pocketbase.Config{DefaultDev: false})

	// automigrate writes migration files for dashboard changes while developing (go run).
	isGoRun := strings.HasPrefix(os.Args[0], os.TempDir())
	migratecmd.MustRegister(app, app.RootCmd, migratecmd.Config{Automigrate: isGoRun})
	chatmodule.MustRegister(app, chatmodule.Config{
		// Set to run as the writer of a cluster of realtime nodes (README, "Scale out").
		NATS: chatmodule.NATSConfig{URL: os.Getenv("PBCHAT_NATS_URL"), SubjectPrefix: os.Getenv("PBCHAT_NATS_PREFIX")},
	})

	if err := app.Start(); err != nil {
		log.Fatal(err)
	}
}
