package migrations

import (
	"fmt"

	"github.com/pocketbase/pocketbase/core"
)

// Replies, threads and mentions: fields of chat_messages, and a side table
// of mentions that the unread mention counts read.
const threadsMigration = "1764000009_pbchat_replies_threads_mentions.go"

// MentionsTable holds one row per (message, mentioned user), written in the
// message's transaction by hooks/mentions.go. An unread mention count is a
// range of its (user, room, created) index, where counting json_each over
// chat_messages.mentions would read every unread message's row. thread is
// the thread a mention belongs to: the message's root when it is a reply,
// else the message itself (which may become a root). The author mentioning
// themself has no row.
const MentionsTable = "_pbchat_mentions"

// The chat_messages fields this migration adds.
const (
	threadsIndex     = "idx_chat_messages_thread"
	threadRootsIndex = "idx_chat_messages_room_threads"
)

// addThreads adds reply_to, reply_to_id, thread, thread_count,
// thread_last_reply_at and mentions to chat_messages, their indexes and the
// mentions table. Run again (history cleared), it finds them and leaves them be.
func addThreads(app core.App, usersCollection string) error {
	messages, err := app.FindCollectionByNameOrId(Messages)
	if err != nil {
		return fmt.Errorf("pbchat: %s: %w", Messages, err)
	}
	if messages.Fields.GetByName("thread") == nil {
		users, err := app.FindCollectionByNameOrId(usersCollection)
		if err != nil {
			return fmt.Errorf("pbchat: users collection %q: %w", usersCollection, err)
		}
		messages.Fields.Add(
			// Not cascading: a reply outlives its parent (PocketBase empties
			// reply_to; reply_to_id keeps the parent's id).
			relation("reply_to", messages.Id, false, false),
			&core.TextField{Name: "reply_to_id", Max: 64},
			// Cascading: a thread's replies go with its root.
			relation("thread", messages.Id, false, true),
			&core.NumberField{Name: "thread_count", OnlyInt: true},
			&core.DateField{Name: "thread_last_reply_at"},
			&core.RelationField{Name: "mentions", CollectionId: users.Id, MaxSelect: 50},
		)
		// A thread's replies, oldest first (and who posted them); the roots
		// of a room that have replies, newest reply first.
		messages.AddIndex(threadsIndex, false, "thread, created, user", "thread != ''")
		messages.AddIndex(threadRootsIndex, false, "room, thread_last_reply_at", "thread_count > 0")
		if err := app.Save(messages); err != nil {
			return fmt.Errorf("pbchat: add threads to %s: %w", Messages, err)
		}
	}
	statements := []string{
		`CREATE TABLE IF NOT EXISTS ` + MentionsTable + ` (
			message TEXT NOT NULL,
			user    TEXT NOT NULL,
			room    TEXT NOT NULL,
			thread  TEXT NOT NULL,
			created TEXT NOT NULL,
			PRIMARY KEY (message, user)
		) WITHOUT ROWID`,
		`CREATE INDEX IF NOT EXISTS ` + MentionsTable + `_user_room_created ON ` + MentionsTable + ` (user, room, created)`,
		`CREATE INDEX IF NOT EXISTS ` + MentionsTable + `_thread_user ON ` + MentionsTable + ` (thread, user)`,
	}
	for _, sql := range statements {
		if _, err := app.DB().NewQuery(sql).Execute(); err != nil {
			return fmt.Errorf("pbchat: create %s: %w", MentionsTable, err)
		}
	}
	return nil
}

func dropThreads(app core.App) error {
	if _, err := app.DB().NewQuery(`DROP TABLE IF EXISTS ` + MentionsTable).Execute(); err != nil {
		return fmt.Errorf("pbchat: drop %s: %w", MentionsTable, err)
	}
	messages, err := app.FindCollectionByNameOrId(Messages)
	if err != nil {
		return nil // gone with the collections
	}
	for _, name := range []string{"reply_to", "reply_to_id", "thread", "thread_count", "thread_last_reply_at", "mentions"} {
		messages.Fields.RemoveByName(name)
	}
	messages.RemoveIndex(threadsIndex)
	messages.RemoveIndex(threadRootsIndex)
	if err := app.Save(messages); err != nil {
		return fmt.Errorf("pbchat: remove threads from %s: %w", Messages, err)
	}
	return nil
}
