package notify

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"github.com/pbchat/pbchat/internal/chat"
	"github.com/pbchat/pbchat/migrations"
)

const (
	// idlePoll is how often the notifier looks for work nobody woke it for
	// (rows another process wrote); a new message wakes it at once.
	idlePoll = 30 * time.Second
	// batchSize bounds the rows one step reads.
	batchSize = 100
	// maxBackoff caps the wait between two attempts of a delivery.
	maxBackoff = time.Hour
	// sendTimeout bounds one push or webhook request.
	sendTimeout = 10 * time.Second
	// pushTextLimit keeps a push payload within a push service's 4 KB record.
	pushTextLimit = 500
)

// Delivery kinds.
const (
	kindPush    = "push"
	kindWebhook = "webhook"
)

// Notification is what a webhook receives (and, with the text shortened,
// what a push carries): Count messages of Room arrived for User; Message is
// the latest of them.
type Notification struct {
	Type     string         `json:"type"` // "message.created"
	User     string         `json:"user"`
	Room     string         `json:"room"`
	RoomName string         `json:"roomName"`
	Message  map[string]any `json:"message"`
	Count    int            `json:"count"`
	Mention  bool           `json:"mention"`
}

type notifier struct {
	app      core.App
	settings chat.Settings
	presence Presence
	client   *http.Client

	wake chan struct{} // a message was committed

	mu      sync.Mutex
	cancel  context.CancelFunc
	done    chan struct{}
	vapid   *vapidKeys
	vapidMu sync.Mutex
}

func (n *notifier) start() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cancel != nil {
		return
	}
	if n.client == nil {
		n.client = &http.Client{Timeout: sendTimeout}
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel, n.done = cancel, make(chan struct{})
	go n.run(ctx, n.done)
}

// stop ends the notifier and waits for it: what it had not finished stays
// in the tables for the next start.
func (n *notifier) stop() {
	n.mu.Lock()
	cancel, done := n.cancel, n.done
	n.cancel, n.done = nil, nil
	n.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// signal wakes the notifier (a message was committed).
func (n *notifier) signal() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// run works until ctx ends, sleeping until the next row is due, a message
// is committed, or idlePoll has passed. Its queries go through the write
// pool: they are short, and they stay out of the pool requests read from.
func (n *notifier) run(ctx context.Context, done chan struct{}) {
	defer close(done)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.wake:
		case <-timer.C:
		}
		wait := idlePoll
		next, err := n.step(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			n.app.Logger().Error("pbchat notifications", "error", err)
			wait = time.Second
		} else if !next.IsZero() {
			wait = min(max(time.Until(next), 10*time.Millisecond), idlePoll)
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
	}
}

// step runs each stage once and returns when the next row is due (zero: none).
func (n *notifier) step(ctx context.Context) (time.Time, error) {
	if !n.app.IsBootstrapped() {
		// Closed without OnTerminate (ResetBootstrapState in tools and
		// benchmarks): nothing to read until it is bootstrapped again.
		return time.Time{}, nil
	}
	if err := n.fanOut(); err != nil {
		return time.Time{}, err
	}
	if err := n.coalesce(time.Now()); err != nil {
		return time.Time{}, err
	}
	if err := n.deliver(ctx, time.Now()); err != nil {
		return time.Time{}, err
	}
	var due struct {
		Outbox     sql.NullInt64 `db:"outbox"`
		Pending    sql.NullInt64 `db:"pending"`
		Deliveries sql.NullInt64 `db:"deliveries"`
	}
	if err := n.app.NonconcurrentDB().NewQuery(`SELECT
		(SELECT min(created) FROM ` + migrations.OutboxTable + `) AS outbox,
		(SELECT min(created) FROM ` + migrations.PendingTable + `) AS pending,
		(SELECT min(next_at) FROM ` + migrations.DeliveriesTable + `) AS deliveries`).One(&due); err != nil {
		return time.Time{}, fmt.Errorf("next due row: %w", err)
	}
	var next time.Time
	consider := func(ms int64) {
		if t := time.UnixMilli(ms); next.IsZero() || t.Before(next) {
			next = t
		}
	}
	if due.Outbox.Valid {
		consider(due.Outbox.Int64)
	}
	if due.Pending.Valid {
		consider(due.Pending.Int64 + n.settings.Notifications.Window.Milliseconds())
	}
	if due.Deliveries.Valid {
		consider(due.Deliveries.Int64)
	}
	return next, nil
}

// coalesce turns the pending rows of each (user, room) whose first is
// Window old into one notification per target.
func (n *notifier) coalesce(now time.Time) error {
	cutoff := now.Add(-n.settings.Notifications.Window).UnixMilli()
	var groups []struct {
		User string `db:"user"`
		Room string `db:"room"`
		Last int64  `db:"last"`
	}
	if err := n.app.NonconcurrentDB().NewQuery(`SELECT user, room, max(id) AS last FROM ` + migrations.PendingTable +
		` GROUP BY user, room HAVING min(created) <= {:cutoff} LIMIT {:limit}`).
		Bind(dbx.Params{"cutoff": cutoff, "limit": batchSize}).All(&groups); err != nil {
		return fmt.Errorf("due notifications: %w", err)
	}
	for _, g := range groups {
		err := n.app.RunInTransaction(func(tx core.App) error {
			if err := n.notify(tx, g.User, g.Room, g.Last, now); err != nil {
				return err
			}
			_, err := tx.NonconcurrentDB().Delete(migrations.PendingTable, dbx.And(
				dbx.HashExp{"user": g.User, "room": g.Room}, dbx.NewExp("id <= {:last}", dbx.Params{"last": g.Last}))).Execute()
			return err
		})
		if err != nil {
			return fmt.Errorf("notify %s of room %s: %w", g.User, g.Room, err)
		}
	}
	return nil
}

// notify writes the deliveries of one coalesced notification.
func (n *notifier) notify(tx core.App, user, room string, last int64, now time.Time) error {
	var rows []struct {
		Message string `db:"message"`
		Mention bool   `db:"mention"`
	}
	// Messages deleted since count no more.
	if err := tx.NonconcurrentDB().NewQuery(`SELECT p.message AS message, p.mention AS mention FROM ` + migrations.PendingTable +
		` p JOIN ` + migrations.Messages + ` m ON m.id = p.message WHERE p.user = {:user} AND p.room = {:room} AND p.id <= {:last} ORDER BY p.id`).
		Bind(dbx.Params{"user": user, "room": room, "last": last}).All(&rows); err != nil {
		return fmt.Errorf("pending messages: %w", err)
	}
	if len(rows) == 0 {
		return nil
	}
	message, err := tx.FindRecordById(migrations.Messages, rows[len(rows)-1].Message)
	if err != nil {
		return fmt.Errorf("message %s: %w", rows[len(rows)-1].Message, err)
	}
	note := Notification{Type: "message.created", User: user, Room: room, Count: len(rows)}
	for _, r := range rows {
		note.Mention = note.Mention || r.Mention
	}
	if r, err := tx.FindRecordById(migrations.Rooms, room); err == nil {
		note.RoomName = r.GetString("name")
	}
	note.Message = map[string]any{
		"id": message.Id, "room": room, "user": message.GetString("user"),
		"text": message.GetString("text"), "created": message.GetDateTime("created"),
	}
	if author, err := tx.FindRecordById(n.settings.UsersCollection, message.GetString("user")); err == nil {
		note.Message["userName"] = author.GetString("name")
	}

	webhookBody, err := json.Marshal(note)
	if err != nil {
		return err
	}
	if text := message.GetString("text"); utf8.RuneCountInString(text) > pushTextLimit {
		note.Message["text"] = string([]rune(text)[:pushTextLimit]) + "…"
	}
	pushBody, err := json.Marshal(note)
	if err != nil {
		return err
	}

	var subscriptions []string
	if err := tx.NonconcurrentDB().Select("id").From(migrations.PushSubscriptions).
		Where(dbx.HashExp{"user": user}).Column(&subscriptions); err != nil {
		return fmt.Errorf("push subscriptions of %s: %w", user, err)
	}
	webhooks, err := n.webhooks(tx)
	if err != nil {
		return err
	}
	insert := func(kind, target string, payload []byte) error {
		_, err := tx.NonconcurrentDB().Insert(migrations.DeliveriesTable, dbx.Params{
			"kind": kind, "target": target, "payload": string(payload), "attempts": 0, "next_at": now.UnixMilli(),
		}).Execute()
		return err
	}
	for _, id := range subscriptions {
		if err := insert(kindPush, id, pushBody); err != nil {
			return fmt.Errorf("push delivery: %w", err)
		}
	}
	for _, hook := range webhooks {
		if err := insert(kindWebhook, hook.URL, webhookBody); err != nil {
			return fmt.Errorf("webhook delivery: %w", err)
		}
	}
	return nil
}

// webhooks are Config's and the dashboard's (chat_webhooks, not disabled).
func (n *notifier) webhooks(app core.App) ([]chat.WebhookConfig, error) {
	hooks := slices.Clone(n.settings.Notifications.Webhooks)
	records, err := app.FindAllRecords(migrations.Webhooks, dbx.HashExp{"disabled": false})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", migrations.Webhooks, err)
	}
	for _, r := range records {
		hooks = append(hooks, chat.WebhookConfig{URL: r.GetString("url"), Secret: r.GetString("secret")})
	}
	return hooks, nil
}

// outcome of one attempt.
type outcome int

const (
	delivered outcome = iota
	retry             // 5xx, 429, no answer: try again later
	give              // refused for good: drop the delivery
	gone              // the push subscription expired (404, 410): drop it
)

// deliver sends the due deliveries.
func (n *notifier) deliver(ctx context.Context, now time.Time) error {
	var rows []struct {
		ID       int64  `db:"id"`
		Kind     string `db:"kind"`
		Target   string `db:"target"`
		Payload  string `db:"payload"`
		Attempts int    `db:"attempts"`
	}
	if err := n.app.NonconcurrentDB().Select("id", "kind", "target", "payload", "attempts").From(migrations.DeliveriesTable).
		Where(dbx.NewExp("next_at <= {:now}", dbx.Params{"now": now.UnixMilli()})).
		OrderBy("next_at", "id").Limit(batchSize).All(&rows); err != nil {
		return fmt.Errorf("due deliveries: %w", err)
	}
	for _, row := range rows {
		if ctx.Err() != nil {
			return nil
		}
		var result outcome
		var err error
		switch row.Kind {
		case kindPush:
			result, err = n.sendPush(ctx, row.Target, []byte(row.Payload))
		case kindWebhook:
			result, err = n.sendWebhook(ctx, row.Target, []byte(row.Payload))
		default:
			result, err = give, fmt.Errorf("unknown delivery kind %q", row.Kind)
		}
		if ctx.Err() != nil {
			return nil // stopping: the attempt does not count
		}
		attempts := row.Attempts + 1
		if result == retry && attempts >= n.settings.Notifications.MaxAttempts {
			result = give
		}
		if err != nil {
			n.app.Logger().Warn("pbchat notifications: delivery failed", "kind", row.Kind, "target", logTarget(row.Kind, row.Target),
				"attempt", attempts, "retry", result == retry, "error", err)
		}
		db := n.app.NonconcurrentDB()
		switch result {
		case retry:
			wait := n.settings.Notifications.RetryBackoff << min(attempts-1, 30)
			if wait > maxBackoff || wait <= 0 {
				wait = maxBackoff
			}
			_, err = db.Update(migrations.DeliveriesTable, dbx.Params{"attempts": attempts, "next_at": time.Now().Add(wait).UnixMilli()},
				dbx.HashExp{"id": row.ID}).Execute()
		case gone:
			err = n.removeSubscription(row.Target)
			if err == nil {
				_, err = db.Delete(migrations.DeliveriesTable, dbx.HashExp{"id": row.ID}).Execute()
			}
		default:
			_, err = db.Delete(migrations.DeliveriesTable, dbx.HashExp{"id": row.ID}).Execute()
		}
		if err != nil {
			return fmt.Errorf("record delivery %d: %w", row.ID, err)
		}
	}
	return nil
}

// removeSubscription deletes an expired push subscription and its other
// pending deliveries.
func (n *notifier) removeSubscription(id string) error {
	record, err := findRecord(n.app, migrations.PushSubscriptions, id)
	if err == nil {
		err = n.app.Delete(record)
	}
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("remove push subscription %s: %w", id, err)
	}
	_, err = n.app.NonconcurrentDB().Delete(migrations.DeliveriesTable, dbx.HashExp{"kind": kindPush, "target": id}).Execute()
	return err
}

// findRecord reads a record through the write pool (in a transaction): the
// notifier's reads stay out of the pool requests read from.
func findRecord(app core.App, collection, id string) (*core.Record, error) {
	var record *core.Record
	err := app.RunInTransaction(func(tx core.App) error {
		var err error
		record, err = tx.FindRecordById(collection, id)
		return err
	})
	return record, err
}

// logTarget keeps webhook URLs (which may hold tokens) out of the logs but their host.
func logTarget(kind, target string) string {
	if kind == kindWebhook {
		return hostOf(target)
	}
	return target
}

// classify maps an HTTP status to an outcome.
func classify(status int) outcome {
	switch {
	case status >= 200 && status < 300:
		return delivered
	case status == http.StatusTooManyRequests || status == http.StatusRequestTimeout || status >= 500:
		return retry
	default:
		return give
	}
}
