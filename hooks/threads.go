package hooks

import (
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/types"

	"github.com/pbchat/pbchat/internal/chat"
	"github.com/pbchat/pbchat/migrations"
)

// threads keeps replies and threads (model hooks: every writer) and serves
// GET /api/chat/threads. The fields reply_to_id, thread_count and
// thread_last_reply_at are the server's: whatever a writer sets, they are
// the parent's id, and the count and last reply time of the thread's
// replies, recomputed in the transaction of the write that changes them.
type threads struct{ settings chat.Settings }

// create checks reply_to and thread, and counts the reply on its root, in
// the message's transaction. Bound after messages.create, inside its transaction.
func (h threads) create(e *core.RecordEvent) error {
	e.Record.Set("reply_to_id", e.Record.GetString("reply_to"))
	e.Record.Set("thread_count", 0)
	e.Record.Set("thread_last_reply_at", "")
	return inTransaction(e, func(tx core.App) error {
		room := e.Record.GetString("room")
		if parent := e.Record.GetString("reply_to"); parent != "" {
			ref, err := findMessageRef(tx, parent)
			if err != nil {
				return err
			}
			if err := chat.CheckReplyTo(room, ref); err != nil {
				return fieldError("reply_to", "invalid_reply_to", err.Error())
			}
		}
		root := e.Record.GetString("thread")
		if root != "" {
			ref, err := findMessageRef(tx, root)
			if err != nil {
				return err
			}
			if err := chat.CheckThreadRoot(room, ref); err != nil {
				return fieldError("thread", "invalid_thread", err.Error())
			}
		}
		if root != "" {
			// The root's update goes first, so that its log row and event
			// come before the reply's, as PocketBase completes the saves of a
			// transaction innermost first: the reply is counted, with the
			// created time it is about to be saved with.
			if e.Record.GetDateTime("created").IsZero() {
				e.Record.SetRaw("created", types.NowDateTime())
			}
			pending := threadCounts{Count: 1, Last: e.Record.GetDateTime("created").String()}
			if err := refreshThreadRoot(tx, root, "", pending); err != nil {
				return err
			}
		}
		return e.Next()
	})
}

// update keeps reply_to (PocketBase may empty it when the parent is
// deleted), thread, and the server-set fields.
func (h threads) update(e *core.RecordEvent) error {
	original := e.Record.Original()
	e.Record.Set("reply_to_id", original.Get("reply_to_id"))
	parentDeleted, err := relationTargetDeleted(e.App, e.Record, "reply_to")
	if err != nil {
		return err
	}
	fields := []string{"thread"}
	if !parentDeleted {
		fields = append(fields, "reply_to")
	}
	if err := immutable(e.Record, fields...); err != nil {
		return err
	}
	if _, ours := rootWrites.Load(e.Record); ours ||
		e.Record.GetInt("thread_count") == original.GetInt("thread_count") &&
			e.Record.GetString("thread_last_reply_at") == original.GetString("thread_last_reply_at") {
		return e.Next()
	}
	return inTransaction(e, func(tx core.App) error {
		stats, err := threadStats(tx, e.Record.Id, "")
		if err != nil {
			return err
		}
		e.Record.Set("thread_count", stats.Count)
		e.Record.Set("thread_last_reply_at", stats.Last)
		return e.Next()
	})
}

// delete takes a thread reply off its root's count in its transaction
// (the root's update first, as for create).
func (h threads) delete(e *core.RecordEvent) error {
	root := e.Record.GetString("thread")
	if root == "" {
		return e.Next()
	}
	return inTransaction(e, func(tx core.App) error {
		if err := refreshThreadRoot(tx, root, e.Record.Id, threadCounts{}); err != nil {
			return err
		}
		return e.Next()
	})
}

// rootWrites marks the thread roots refreshThreadRoot is saving: their
// counts are the server's, not a writer's to be recomputed.
var rootWrites sync.Map

// refreshThreadRoot saves root with its replies' count and last reply time,
// leaving out the reply except (being deleted) and adding pending (being
// created): a message.updated event of the root, in the reply's
// transaction. A root or room being deleted (the reply goes with it) is left be.
func refreshThreadRoot(tx core.App, rootID, except string, pending threadCounts) error {
	root, err := findRecord(tx, migrations.Messages, rootID)
	if err != nil || root == nil {
		return err
	}
	room, err := findRecord(tx, migrations.Rooms, root.GetString("room"))
	if err != nil || room == nil {
		return err
	}
	stats, err := threadStats(tx, rootID, except)
	if err != nil {
		return err
	}
	root.Set("thread_count", stats.Count+pending.Count)
	root.Set("thread_last_reply_at", max(stats.Last, pending.Last))
	// Not validated again: the root was valid when written, and a limit
	// lowered since (text length) must not refuse a reply to it.
	rootWrites.Store(root, struct{}{})
	defer rootWrites.Delete(root)
	if err := tx.SaveNoValidate(root); err != nil {
		return fmt.Errorf("update the thread of %s: %w", rootID, err)
	}
	return nil
}

type threadCounts struct {
	Count int    `db:"n"`
	Last  string `db:"last"`
}

// threadStats counts the replies of rootID but except.
func threadStats(app core.App, rootID, except string) (threadCounts, error) {
	var stats threadCounts
	err := app.DB().NewQuery(`SELECT count(*) AS n, coalesce(max(created), '') AS last
		FROM ` + migrations.Messages + ` WHERE thread = {:root} AND thread != '' AND id != {:except}`).
		Bind(dbx.Params{"root": rootID, "except": except}).One(&stats)
	if err != nil {
		return stats, serverError(fmt.Errorf("count the replies of %s: %w", rootID, err))
	}
	return stats, nil
}

// findMessageRef is the message id's room and thread, nil when there is none.
func findMessageRef(app core.App, id string) (*chat.MessageRef, error) {
	var row struct {
		Room   string `db:"room"`
		Thread string `db:"thread"`
	}
	err := app.DB().Select("room", "thread").From(migrations.Messages).
		Where(dbx.HashExp{"id": id}).Limit(1).One(&row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, serverError(fmt.Errorf("find message %s: %w", id, err))
	}
	return &chat.MessageRef{ID: id, Room: row.Room, Thread: row.Thread}, nil
}

type threadItem struct {
	Root   *core.Record `json:"root"`
	Unread int          `json:"unread"`
}

// list serves GET /api/chat/threads?room=ID: the threads of the room the
// caller takes part in (posted the root or a reply, or is mentioned in
// one), newest reply first, each with the replies of others after the
// caller's last_seen_at (from joining on when never read). One query.
func (h threads) list(e *core.RequestEvent) error {
	roomID := e.Request.URL.Query().Get("room")
	if roomID == "" {
		return e.BadRequestError("Missing room.", fieldError("room", "validation_required", "room is required"))
	}
	userID := authUserID(e, h.settings)
	membership, err := findMembership(e.App, roomID, userID)
	if err != nil {
		return err
	}
	if membership == nil {
		return e.NotFoundError("The room does not exist or you are not a member of it.", nil)
	}
	seen := membership.GetString("last_seen_at")
	since := seen
	if since == "" {
		since = membership.GetString("created")
	}
	var rows []struct {
		ID     string `db:"id"`
		Unread int    `db:"unread"`
	}
	err = e.App.DB().NewQuery(`SELECT r.id AS id,
			(SELECT count(*) FROM ` + migrations.Messages + ` t
				WHERE t.thread = r.id AND t.thread != '' AND t.created >= {:since} AND t.created != {:seen} AND t.user != {:user}) AS unread
		FROM ` + migrations.Messages + ` r
		WHERE r.room = {:room} AND r.thread_count > 0
		  AND (r.user = {:user}
		       OR EXISTS (SELECT 1 FROM ` + migrations.Messages + ` p WHERE p.thread = r.id AND p.thread != '' AND p.user = {:user})
		       OR EXISTS (SELECT 1 FROM ` + migrations.MentionsTable + ` n WHERE n.thread = r.id AND n.user = {:user}))
		ORDER BY r.thread_last_reply_at DESC, r.id DESC`).
		Bind(dbx.Params{"room": roomID, "user": userID, "since": since, "seen": seen}).All(&rows)
	if err != nil {
		return serverError(fmt.Errorf("the threads of %s in %s: %w", userID, roomID, err))
	}
	ids := make([]string, len(rows))
	for i, row := range rows {
		ids[i] = row.ID
	}
	roots, err := recordsByID(e, migrations.Messages, ids)
	if err != nil {
		return serverError(err)
	}
	items := make([]threadItem, 0, len(rows))
	for _, row := range rows {
		if root := roots[row.ID]; root != nil {
			items = append(items, threadItem{Root: root, Unread: row.Unread})
		}
	}
	return e.JSON(http.StatusOK, map[string]any{"items": items})
}
