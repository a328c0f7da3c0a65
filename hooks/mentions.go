package hooks

import (
	"fmt"
	"slices"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"github.com/pbchat/pbchat/internal/chat"
	"github.com/pbchat/pbchat/migrations"
)

// mentionsExpr counts the messages after m's last_seen_at (or from joining
// on) that mention m's user: a range of the mentions table's (user, room,
// created) index, as unreadExpr is of the messages'. Muting does not matter.
const mentionsExpr = `(SELECT count(*) FROM ` + migrations.MentionsTable + ` n
	WHERE n.user = m.user AND n.room = m.room
	  AND n.created >= (CASE WHEN m.last_seen_at != '' THEN m.last_seen_at ELSE m.created END)
	  AND (m.last_seen_at = '' OR n.created != m.last_seen_at))`

// mentions keeps chat_messages.mentions to members of the room (the users a
// write adds; a mention of someone who left since stays) and the mentions
// table in step with it, in the message's transaction.
type mentions struct{}

// create is bound after messages.create, inside its transaction.
func (mentions) create(e *core.RecordEvent) error {
	users := e.Record.GetStringSlice("mentions")
	if len(users) == 0 {
		return e.Next()
	}
	return inTransaction(e, func(tx core.App) error {
		if err := checkMentions(tx, e.Record, users, users); err != nil {
			return err
		}
		if err := e.Next(); err != nil {
			return err
		}
		return writeMentions(tx, e.Record, users)
	})
}

func (mentions) update(e *core.RecordEvent) error {
	before := e.Record.Original().GetStringSlice("mentions")
	after := e.Record.GetStringSlice("mentions")
	if slices.Equal(before, after) {
		return e.Next()
	}
	return inTransaction(e, func(tx core.App) error {
		if err := checkMentions(tx, e.Record, after, chat.AddedMentions(before, after)); err != nil {
			return err
		}
		if err := e.Next(); err != nil {
			return err
		}
		if err := deleteMentions(tx, e.Record.Id); err != nil {
			return err
		}
		return writeMentions(tx, e.Record, after)
	})
}

func (mentions) delete(e *core.RecordEvent) error {
	return inTransaction(e, func(tx core.App) error {
		if err := e.Next(); err != nil {
			return err
		}
		return deleteMentions(tx, e.Record.Id)
	})
}

// checkMentions refuses added users who are not members of the record's room (one query).
func checkMentions(tx core.App, record *core.Record, all, added []string) error {
	members := map[string]bool{}
	if len(added) > 0 {
		users := make([]any, len(added))
		for i, user := range added {
			users[i] = user
		}
		var found []string
		err := tx.DB().Select("user").From(migrations.RoomUsers).
			Where(dbx.HashExp{"room": record.GetString("room")}).
			AndWhere(dbx.In("user", users...)).Column(&found)
		if err != nil {
			return serverError(fmt.Errorf("find the mentioned members of %s: %w", record.GetString("room"), err))
		}
		for _, user := range found {
			members[user] = true
		}
	}
	if err := chat.CheckMentions(len(all), added, func(user string) bool { return members[user] }); err != nil {
		return fieldError("mentions", "invalid_mentions", err.Error())
	}
	return nil
}

// writeMentions writes the mentions table's rows of a saved message (the
// author mentioning themself has none).
func writeMentions(tx core.App, record *core.Record, users []string) error {
	thread := record.GetString("thread")
	if thread == "" {
		thread = record.Id
	}
	for _, user := range users {
		if user == record.GetString("user") {
			continue
		}
		_, err := tx.DB().NewQuery(`INSERT OR IGNORE INTO ` + migrations.MentionsTable +
			` (message, user, room, thread, created) VALUES ({:message}, {:user}, {:room}, {:thread}, {:created})`).
			Bind(dbx.Params{"message": record.Id, "user": user, "room": record.GetString("room"), "thread": thread, "created": record.GetString("created")}).
			Execute()
		if err != nil {
			return serverError(fmt.Errorf("write the mentions of %s: %w", record.Id, err))
		}
	}
	return nil
}

func deleteMentions(tx core.App, messageID string) error {
	_, err := tx.DB().Delete(migrations.MentionsTable, dbx.HashExp{"message": messageID}).Execute()
	if err != nil {
		return serverError(fmt.Errorf("delete the mentions of %s: %w", messageID, err))
	}
	return nil
}
