package migrations

import (
	"fmt"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/types"

	"github.com/pbchat/pbchat/internal/chat"
)

// Notifications: three plain tables (written by pbchat only) and two
// collections (written through the API and the dashboard).
const (
	// OutboxTable holds one row per new message that may notify someone,
	// written in the message's transaction: a crash after the commit loses
	// no notification. The notifier fans each out to its recipients.
	OutboxTable = "_pbchat_outbox"
	// PendingTable holds one row per (recipient, message) waiting for its
	// coalescing window to end.
	PendingTable = "_pbchat_notifications"
	// DeliveriesTable holds one row per notification and target (a push
	// subscription, a webhook URL) until it is delivered or given up.
	DeliveriesTable = "_pbchat_deliveries"
	// SettingsTable holds pbchat's generated settings (the VAPID key pair).
	SettingsTable = "_pbchat_settings"

	// PushSubscriptions holds the Web Push subscriptions of users' browsers:
	// each user creates, lists and deletes their own.
	PushSubscriptions = "chat_push_subscriptions"
	// Webhooks holds the webhooks added in the dashboard (superusers only).
	Webhooks = "chat_webhooks"
)

const notificationsMigration = "1764000008_pbchat_notifications.go"

func createNotifications(app core.App, settings chat.Settings) error {
	statements := []string{
		`CREATE TABLE IF NOT EXISTS ` + OutboxTable + ` (
			id      INTEGER PRIMARY KEY,
			message TEXT NOT NULL,
			room    TEXT NOT NULL,
			author  TEXT NOT NULL,
			created INTEGER NOT NULL
		)`,
		`CREATE TABLE IF NOT EXISTS ` + PendingTable + ` (
			id      INTEGER PRIMARY KEY,
			user    TEXT NOT NULL,
			room    TEXT NOT NULL,
			message TEXT NOT NULL,
			mention INTEGER NOT NULL DEFAULT 0,
			created INTEGER NOT NULL
		)`,
		`CREATE INDEX IF NOT EXISTS idx_pbchat_notifications_user_room ON ` + PendingTable + ` (user, room)`,
		`CREATE TABLE IF NOT EXISTS ` + DeliveriesTable + ` (
			id       INTEGER PRIMARY KEY,
			kind     TEXT NOT NULL,
			target   TEXT NOT NULL,
			payload  TEXT NOT NULL,
			attempts INTEGER NOT NULL DEFAULT 0,
			next_at  INTEGER NOT NULL
		)`,
		`CREATE INDEX IF NOT EXISTS idx_pbchat_deliveries_next ON ` + DeliveriesTable + ` (next_at)`,
		`CREATE TABLE IF NOT EXISTS ` + SettingsTable + ` (
			key   TEXT PRIMARY KEY NOT NULL,
			value TEXT NOT NULL
		)`,
	}
	for _, sql := range statements {
		if _, err := app.DB().NewQuery(sql).Execute(); err != nil {
			return fmt.Errorf("pbchat: create the notification tables: %w", err)
		}
	}

	if _, err := app.FindCollectionByNameOrId(PushSubscriptions); err != nil {
		users, err := app.FindCollectionByNameOrId(settings.UsersCollection)
		if err != nil {
			return fmt.Errorf("pbchat: users collection %q: %w", settings.UsersCollection, err)
		}
		own := fmt.Sprintf(`@request.auth.id != "" && @request.auth.collectionName = %q && user = @request.auth.id`, users.Name)
		subs := core.NewBaseCollection(PushSubscriptions)
		subs.Fields.Add(
			relation("user", users.Id, true, true),
			&core.URLField{Name: "endpoint", Required: true},
			&core.TextField{Name: "p256dh", Required: true, Max: 200},
			&core.TextField{Name: "auth", Required: true, Max: 100},
		)
		subs.Fields.Add(timestamps()...)
		subs.AddIndex("idx_chat_push_subscriptions_user_endpoint", true, "user, endpoint", "")
		subs.ListRule, subs.ViewRule, subs.CreateRule, subs.DeleteRule = types.Pointer(own), types.Pointer(own), types.Pointer(own), types.Pointer(own)
		if err := app.Save(subs); err != nil {
			return fmt.Errorf("pbchat: create %s: %w", PushSubscriptions, err)
		}
	}

	if _, err := app.FindCollectionByNameOrId(Webhooks); err != nil {
		hooks := core.NewBaseCollection(Webhooks) // no rules: superusers only
		hooks.Fields.Add(
			&core.URLField{Name: "url", Required: true, OnlyDomains: nil},
			&core.TextField{Name: "secret", Required: true, Hidden: true, Max: 500},
			&core.BoolField{Name: "disabled"},
		)
		hooks.Fields.Add(timestamps()...)
		if err := app.Save(hooks); err != nil {
			return fmt.Errorf("pbchat: create %s: %w", Webhooks, err)
		}
	}
	return nil
}

func dropNotifications(app core.App) error {
	for _, name := range []string{PushSubscriptions, Webhooks} {
		if c, err := app.FindCollectionByNameOrId(name); err == nil {
			if err := app.Delete(c); err != nil {
				return fmt.Errorf("pbchat: delete %s: %w", name, err)
			}
		}
	}
	for _, table := range []string{OutboxTable, PendingTable, DeliveriesTable, SettingsTable} {
		if _, err := app.DB().NewQuery(`DROP TABLE IF EXISTS ` + table).Execute(); err != nil {
			return fmt.Errorf("pbchat: drop %s: %w", table, err)
		}
	}
	return nil
}
