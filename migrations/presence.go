package migrations

import (
	"fmt"

	"github.com/pocketbase/pocketbase/core"
)

// PresenceTable keeps when each chat user was last online: written by the
// writer when a user's last realtime connection ends (and at shutdown for
// those still connected). Who is online now is kept in memory (realtime.Presence).
const PresenceTable = "_pbchat_presence"

const presenceMigration = "1764000007_pbchat_presence.go"

func createPresence(app core.App) error {
	if _, err := app.DB().NewQuery(`CREATE TABLE IF NOT EXISTS ` + PresenceTable + ` (
		user        TEXT PRIMARY KEY NOT NULL,
		last_online TEXT NOT NULL DEFAULT ''
	)`).Execute(); err != nil {
		return fmt.Errorf("pbchat: create %s: %w", PresenceTable, err)
	}
	return nil
}

func dropPresence(app core.App) error {
	if _, err := app.DB().NewQuery(`DROP TABLE IF EXISTS ` + PresenceTable).Execute(); err != nil {
		return fmt.Errorf("pbchat: drop %s: %w", PresenceTable, err)
	}
	return nil
}
