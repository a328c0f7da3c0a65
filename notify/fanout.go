package notify

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"github.com/pbchat/pbchat/migrations"
)

// outboxRow is a committed message waiting for its fan-out.
type outboxRow struct {
	ID      int64  `db:"id"`
	Message string `db:"message"`
	Room    string `db:"room"`
	Author  string `db:"author"`
	Created int64  `db:"created"`
}

// fanOut turns outbox rows into one pending row per recipient a
// notification can reach.
func (n *notifier) fanOut() error {
	var rows []outboxRow
	if err := n.app.NonconcurrentDB().Select("id", "message", "room", "author", "created").From(migrations.OutboxTable).
		OrderBy("id").Limit(batchSize).All(&rows); err != nil {
		return fmt.Errorf("read the outbox: %w", err)
	}
	if len(rows) == 0 {
		return nil
	}
	// One transaction per batch: a busy room's messages cost the write
	// connection one more transaction per batch, not per message.
	return n.app.RunInTransaction(func(tx core.App) error {
		// A webhook receives every member's notifications: while one is
		// configured every member is reachable. Read once per batch, in its
		// transaction, so a batch sees one answer.
		hooks, err := n.webhooks(tx)
		if err != nil {
			return fmt.Errorf("fan out: %w", err)
		}
		for _, row := range rows {
			if err := n.recipients(tx, row, len(hooks) > 0); err != nil {
				return fmt.Errorf("fan out message %s: %w", row.Message, err)
			}
			if _, err := tx.NonconcurrentDB().Delete(migrations.OutboxTable, dbx.HashExp{"id": row.ID}).Execute(); err != nil {
				return fmt.Errorf("fan out message %s: %w", row.Message, err)
			}
		}
		return nil
	})
}

// membersSQL selects the members of a room but its author; reachableSQL
// narrows them to those with a push subscription. Without a webhook nothing
// else can reach a member, and a pending row nobody can receive would cost
// the notifier a row, a presence check and a coalescing transaction per
// member and message (a 1,000-member room: milliseconds per message). The
// EXISTS reads the push subscriptions' (user, endpoint) index.
const (
	membersSQL = `SELECT m.user AS user, m.muted AS muted FROM ` + migrations.RoomUsers +
		` m WHERE m.room = {:room} AND m.user != {:author}`
	reachableSQL = membersSQL + ` AND EXISTS (SELECT 1 FROM ` + migrations.PushSubscriptions + ` s WHERE s.user = m.user)`
)

// pendingSQL writes a message's pending rows in one statement, whatever the
// number of recipients (a JSON array of their ids, in order), each marked
// as a mention if the message mentions them.
const pendingSQL = `INSERT INTO ` + migrations.PendingTable + ` (user, room, message, mention, created)
	SELECT u.value, {:room}, {:message}, EXISTS (SELECT 1 FROM json_each({:mentions}) x WHERE x.value = u.value), {:created}
	FROM json_each({:users}) u ORDER BY u.key`

// recipients writes the pending rows of one message: its members but the
// author who a notification can reach (everyone when webhooks is set),
// have not muted the room (unless mentioned) and have no connection
// following it. A message deleted since notifies nobody.
func (n *notifier) recipients(tx core.App, row outboxRow, webhooks bool) error {
	query := reachableSQL
	if webhooks {
		query = membersSQL
	}
	var members []struct {
		User  string `db:"user"`
		Muted bool   `db:"muted"`
	}
	if err := tx.NonconcurrentDB().NewQuery(query).Bind(dbx.Params{"room": row.Room, "author": row.Author}).All(&members); err != nil {
		return fmt.Errorf("members of room %s: %w", row.Room, err)
	}
	if len(members) == 0 {
		return nil
	}
	message, err := tx.FindRecordById(migrations.Messages, row.Message)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	mentions := Mentions(message)
	users := make([]string, 0, len(members))
	for _, m := range members {
		if m.Muted && !slices.Contains(mentions, m.User) {
			continue
		}
		if n.presence != nil && n.presence.Connected(m.User, row.Room) {
			continue
		}
		users = append(users, m.User)
	}
	if len(users) == 0 {
		return nil
	}
	usersJSON, err := json.Marshal(users)
	if err != nil {
		return err
	}
	mentionsJSON, err := json.Marshal(mentions)
	if err != nil {
		return err
	}
	if _, err := tx.NonconcurrentDB().NewQuery(pendingSQL).Bind(dbx.Params{
		"room": row.Room, "message": message.Id, "created": row.Created,
		"users": string(usersJSON), "mentions": string(mentionsJSON),
	}).Execute(); err != nil {
		return fmt.Errorf("pending notifications: %w", err)
	}
	return nil
}
