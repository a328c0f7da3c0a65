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
	// Not PocketBase's dev mode even under `go run`: it logs every SQL statement.
	app := pocketbase.NewWithConfig(pocketbase.Config{DefaultDev: false})

	// automigrate writes migration files for dashboard changes while developing (go run).
	isGoRun := strings.HasPrefix(os.Args[0], os.TempDir())
	migratecmd.MustRegister(app, app.RootCmd, migratecmd.Config{Automigrate: isGoRun})
	chatmodule.MustRegister(app, chatmodule.Config{})

	if err := app.Start(); err != nil {
		log.Fatal(err)
	}
}
