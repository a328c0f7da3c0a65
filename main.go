// Command pbchat is a ready PocketBase app with pbchat: `serve` runs it on
// the embedded SQLite database, `chat demo` fills it with demo data.
package main

import (
	"log"
	"net/http"
	"os"
	"path/filepath"

	"github.com/pocketbase/pocketbase"
	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/plugins/migratecmd"
	"github.com/pocketbase/pocketbase/tools/hook"
	"github.com/pocketbase/pocketbase/tools/osutils"

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
	// (PocketBase's check: since Go 1.24 `go run` may start the binary from the build cache, not the temp dir.)
	isGoRun := osutils.IsProbablyGoRun()
	migratecmd.MustRegister(app, app.RootCmd, migratecmd.Config{Automigrate: isGoRun})
	chatmodule.MustRegister(app, chatmodule.Config{
		// Set to run as the writer of a cluster of realtime nodes (README, "Scale out").
		NATS: chatmodule.NATSConfig{URL: os.Getenv("PBCHAT_NATS_URL"), SubjectPrefix: os.Getenv("PBCHAT_NATS_PREFIX")},
	})

	// The web client: static files from --publicDir (default ./pb_public under
	// `go run`, else pb_public beside the binary), as PocketBase's own app does.
	var publicDir string
	app.RootCmd.PersistentFlags().StringVar(&publicDir, "publicDir", defaultPublicDir(isGoRun), "the directory to serve static files")
	app.OnServe().Bind(&hook.Handler[*core.ServeEvent]{
		Func: func(e *core.ServeEvent) error {
			if !e.Router.HasRoute(http.MethodGet, "/{path...}") {
				e.Router.GET("/{path...}", apis.Static(os.DirFS(publicDir), false))
			}
			return e.Next()
		},
		Priority: 999, // after every other route
	})

	if err := app.Start(); err != nil {
		log.Fatal(err)
	}
}

// defaultPublicDir is ./pb_public for `go run` (make serve, from the repo
// root) and pb_public beside a built binary.
func defaultPublicDir(isGoRun bool) string {
	if isGoRun {
		return "./pb_public"
	}
	return filepath.Join(filepath.Dir(os.Args[0]), "pb_public")
}
