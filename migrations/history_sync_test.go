package migrations_test

import (
	"strings"
	"testing"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"github.com/pbchat/pbchat/chatmodule"
	"github.com/pbchat/pbchat/internal/chattest"
	"github.com/pbchat/pbchat/migrations"
)

// PocketBase's `migrate history-sync` deletes the _migrations rows of every
// migration outside its global list, pbchat's included; pbchat's then run
// again and find their work done: same collections, same event log, and the
// operator's settings as they were.
func TestMigrationsSurviveHistorySync(t *testing.T) {
	env := chattest.New(t, chatmodule.Config{})
	app := env.App
	settings, err := chatmodule.Config{}.WithDefaults()
	if err != nil {
		t.Fatal(err)
	}
	// The install turned the batch API on; the operator turned it off since.
	s := app.Settings()
	s.Batch.Enabled = false
	if err := app.Save(s); err != nil {
		t.Fatal(err)
	}
	rooms, err := app.FindCollectionByNameOrId(migrations.Rooms)
	if err != nil {
		t.Fatal(err)
	}
	epochs := count(t, app, migrations.EpochsTable, nil)
	var files []any
	list := migrations.List(settings)
	for _, m := range list.Items() {
		files = append(files, m.File)
	}
	ours := dbx.In("file", files...)
	if n := count(t, app, "_migrations", ours); n != len(files) {
		t.Fatalf("%d of pbchat's %d migrations recorded", n, len(files))
	}

	for round := 0; round < 2; round++ {
		// What `migrate history-sync` runs.
		var list core.MigrationsList
		list.Copy(core.SystemMigrations)
		list.Copy(core.AppMigrations)
		if err := core.NewMigrationsRunner(app, list).RemoveMissingAppliedMigrations(); err != nil {
			t.Fatal(err)
		}
		if n := count(t, app, "_migrations", ours); n != 0 {
			t.Fatalf("history-sync kept %d of pbchat's rows: the test no longer reproduces it", n)
		}

		if err := migrations.Run(app, settings); err != nil {
			t.Fatalf("round %d: pbchat's migrations after history-sync: %v", round, err)
		}
		if n := count(t, app, "_migrations", ours); n != len(files) {
			t.Errorf("round %d: %d of pbchat's %d migrations recorded", round, n, len(files))
		}
		if again, err := app.FindCollectionByNameOrId(migrations.Rooms); err != nil || again.Id != rooms.Id {
			t.Errorf("round %d: %s recreated or gone (%v)", round, migrations.Rooms, err)
		}
		if n := count(t, app, migrations.EpochsTable, nil); n != epochs {
			t.Errorf("round %d: %d event log epochs, want %d (a new first epoch cuts the log)", round, n, epochs)
		}
		if app.Settings().Batch.Enabled {
			t.Errorf("round %d: the batch API the operator turned off is on again", round)
		}
	}
}

// Some of pbchat's collections gone and others there: an error naming them,
// not a half-created schema.
func TestMigrationsRefuseAPartialSchema(t *testing.T) {
	env := chattest.New(t, chatmodule.Config{})
	app := env.App
	settings, err := chatmodule.Config{}.WithDefaults()
	if err != nil {
		t.Fatal(err)
	}
	reactions, err := app.FindCollectionByNameOrId(migrations.MessageReacts)
	if err != nil {
		t.Fatal(err)
	}
	if err := app.Delete(reactions); err != nil {
		t.Fatal(err)
	}
	if _, err := app.DB().Delete("_migrations", dbx.HashExp{"file": "1764000000_pbchat_init.go"}).Execute(); err != nil {
		t.Fatal(err)
	}
	err = migrations.Run(app, settings)
	if err == nil || !strings.Contains(err.Error(), migrations.MessageReacts) {
		t.Fatalf("error %v, want one naming %s", err, migrations.MessageReacts)
	}
}

func count(t *testing.T, app core.App, table string, where dbx.Expression) int {
	t.Helper()
	var n int
	q := app.DB().Select("count(*)").From(table)
	if where != nil {
		q.Where(where)
	}
	if err := q.Row(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
