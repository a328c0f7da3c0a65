package migrations

import (
	"fmt"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/security"
)

// The event log: plain SQLite tables, not collections. A record save per
// event would cost a send too much, and nobody edits the log by hand.
const (
	// EventsTable holds one row per room change that has a realtime type,
	// written in the change's transaction. seq only grows: a new row's seq
	// is one more than the largest in the table, and pruning never deletes
	// the newest row. (Not AUTOINCREMENT: that writes sqlite_sequence, one
	// more page, on every insert.)
	EventsTable = "_pbchat_events"
	// EpochsTable holds the database identity half of a cursor: every
	// process that writes to the log starts an epoch at the next seq.
	EpochsTable = "_pbchat_epochs"
)

const eventLogMigration = "1764000004_pbchat_event_log.go"

// createEventLog creates the log, its indexes and a first epoch (so that a
// database that has never been written to still has a cursor to hand out).
//
// Every index ends with the rowid, which seq is, so each is by seq within
// its columns without storing seq twice:
//   - (room): a room's events after a cursor, one range per room.
//   - (member, type, room) of membership events: a user's joins and leaves
//     per room, without the rows of everybody else's messages.
//   - (room) of room.deleted rows only: whether a room a user left went
//     with its deletion.
func createEventLog(app core.App) error {
	statements := []string{
		`CREATE TABLE IF NOT EXISTS ` + EventsTable + ` (
			seq        INTEGER PRIMARY KEY,
			room       TEXT NOT NULL,
			type       TEXT NOT NULL,
			collection TEXT NOT NULL,
			action     TEXT NOT NULL,
			record_id  TEXT NOT NULL,
			member     TEXT NOT NULL DEFAULT '',
			message    TEXT NOT NULL DEFAULT '',
			created    INTEGER NOT NULL
		)`,
		`CREATE INDEX IF NOT EXISTS idx_pbchat_events_room ON ` + EventsTable + ` (room)`,
		`CREATE INDEX IF NOT EXISTS idx_pbchat_events_member ON ` + EventsTable + ` (member, type, room) WHERE member != ''`,
		`CREATE INDEX IF NOT EXISTS idx_pbchat_events_room_deleted ON ` + EventsTable + ` (room) WHERE type = 'room.deleted'`,
		`CREATE TABLE IF NOT EXISTS ` + EpochsTable + ` (
			epoch     TEXT PRIMARY KEY NOT NULL,
			first_seq INTEGER NOT NULL
		)`,
	}
	for _, sql := range statements {
		if _, err := app.DB().NewQuery(sql).Execute(); err != nil {
			return fmt.Errorf("pbchat: create the event log: %w", err)
		}
	}
	if _, err := app.DB().NewQuery(`INSERT INTO ` + EpochsTable + ` (epoch, first_seq) VALUES ({:epoch}, 1)`).
		Bind(dbx.Params{"epoch": NewEpochID()}).Execute(); err != nil {
		return fmt.Errorf("pbchat: first event log epoch: %w", err)
	}
	return nil
}

func dropEventLog(app core.App) error {
	for _, table := range []string{EventsTable, EpochsTable} {
		if _, err := app.DB().NewQuery(`DROP TABLE IF EXISTS ` + table).Execute(); err != nil {
			return fmt.Errorf("pbchat: drop %s: %w", table, err)
		}
	}
	return nil
}

// NewEpochID returns a random epoch id: 12 characters of [a-z0-9].
func NewEpochID() string {
	return security.RandomStringWithAlphabet(12, "abcdefghijklmnopqrstuvwxyz0123456789")
}
