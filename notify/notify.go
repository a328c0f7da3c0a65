// Package notify tells members about new messages when they are away: a
// new message (and a mention, when messages carry them) notifies each member
// of its room who is not its author, has not muted the room (a mention
// notifies even then) and has no connection following the room, through Web
// Push to every browser the member subscribed and through signed webhooks.
//
// Only a member a notification can reach gets a pending row: one with a
// push subscription, or every member while a webhook is configured.
//
// Nothing is lost on a crash: the message's transaction writes an outbox row;
// the notifier (one goroutine of the serving process) fans it out to its
// recipients, coalesces a recipient's messages per room within
// Config.Notifications.Window into one notification, and writes one delivery
// per target, retried with exponential backoff; every step is a transaction
// over these rows (migrations.OutboxTable, PendingTable, DeliveriesTable).
package notify

import (
	"fmt"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/hook"

	"github.com/pbchat/pbchat/internal/chat"
	"github.com/pbchat/pbchat/migrations"
)

// HookID is the id of the model hook that writes the outbox row of a new message.
const HookID = "pbchat_notify_outbox"

// Presence answers whether a user has a connection following a room
// (realtime.Hub). Only the writer's own connections are known: on a cluster,
// a member connected to a realtime node is notified as if away.
type Presence interface {
	Connected(user, room string) bool
}

// Bind writes the outbox row of every new message in the message's
// transaction, serves GET /api/chat/push/key and runs the notifier while the
// app serves. settings must have gone through WithDefaults; presence may be nil.
func Bind(app core.App, settings chat.Settings, presence Presence) {
	if settings.Notifications.Disabled {
		return
	}
	app.OnRecordCreate(migrations.Messages).Bind(&hook.Handler[*core.RecordEvent]{Id: HookID, Func: writeOutbox})

	n := &notifier{app: app, settings: settings, presence: presence, wake: make(chan struct{}, 1)}
	app.OnRecordAfterCreateSuccess(migrations.Messages).BindFunc(func(e *core.RecordEvent) error {
		n.signal()
		return e.Next()
	})
	app.OnServe().BindFunc(func(se *core.ServeEvent) error {
		se.Router.GET("/api/chat/push/key", n.publicKey)
		if err := se.Next(); err != nil {
			return err
		}
		n.start() // pbchat's migrations have run (a later OnServe handler)
		return nil
	})
	app.OnTerminate().BindFunc(func(e *core.TerminateEvent) error {
		n.stop()
		return e.Next()
	})
}

// writeOutbox adds the message's outbox row in its transaction; a system
// message (member_added, room_renamed, …) notifies nobody.
//
// The row is written even when no member of the room could be notified
// now: knowing that would cost the send a membership read per member (more
// than this one insert), and the fan-out, which may run much later (after a
// restart), reads the push subscriptions and webhooks of its own time, so a
// member who subscribes in between is notified as before.
func writeOutbox(e *core.RecordEvent) error {
	if e.Record.GetString("system") != "" {
		return e.Next()
	}
	original := e.App
	defer func() { e.App = original }()
	return e.App.RunInTransaction(func(tx core.App) error {
		e.App = tx
		if err := e.Next(); err != nil {
			return err
		}
		_, err := tx.NonconcurrentDB().Insert(migrations.OutboxTable, dbx.Params{
			"message": e.Record.Id,
			"room":    e.Record.GetString("room"),
			"author":  e.Record.GetString("user"),
			"created": time.Now().UnixMilli(),
		}).Execute()
		if err != nil {
			return fmt.Errorf("pbchat notifications: outbox row of message %s: %w", e.Record.Id, err)
		}
		return nil
	})
}

// Mentions is the hook point of mentions: the users a message mentions
// (chat_messages.mentions, once messages carry it). A mentioned member is
// notified even in a muted room.
func Mentions(message *core.Record) []string {
	return message.GetStringSlice("mentions")
}
