// Package chatmodule adds chat to a PocketBase app with one call:
//
//	app := pocketbase.New()
//	chatmodule.MustRegister(app, chatmodule.Config{})
//	app.Start()
//
// Register creates the chat collections (on serve, or at once when the app
// is already bootstrapped), binds the hooks that enforce chat permissions
// and invariants, the /api/chat routes and the orphan media job, and, when
// app is a *pocketbase.PocketBase, adds the `chat` command group.
//
// This package is pbchat's public face (Config, Register, MustRegister, the
// commands); what it binds lives in the packages named for it: migrations,
// hooks, realtime, queryguard, ratelimit and demo, over the rules in
// internal/chat (docs/architecture.md).
package chatmodule

import (
	"github.com/pocketbase/pocketbase"
	"github.com/pocketbase/pocketbase/core"

	"github.com/pbchat/pbchat/demo"
	"github.com/pbchat/pbchat/hooks"
	"github.com/pbchat/pbchat/internal/chat"
	"github.com/pbchat/pbchat/migrations"
	"github.com/pbchat/pbchat/notify"
	"github.com/pbchat/pbchat/queryguard"
	"github.com/pbchat/pbchat/ratelimit"
	"github.com/pbchat/pbchat/realtime"
)

// Config configures pbchat; its zero value is the spec's defaults. It is
// chat.Settings, where each field is documented:
//
//   - UsersCollection: the auth collection of chat users. Default "users".
//   - RoomDefaults: creator and member permissions per room type ("private_messages",
//     "group", "channel"); a type or half left out keeps the spec's default.
//   - Reactions: Mode "emoji" (default), "like_dislike" or "custom" (MaxLength, default 32),
//     or an Allowed list that wins over the mode.
//   - MaxMessageLength: characters per message. Default 4000.
//   - MaxAttachments: media per message. Default 10.
//   - MaxMediaSize: bytes per chat_media file. Default 20 MiB.
//   - OrphanMediaTTL: how long never-attached media is kept. Default 24h.
//   - OrphanMediaCleanupSchedule: cron of the clean-up job. Default "*/10 * * * *".
//   - EventRetention: how long the event log keeps a room change for
//     GET /api/chat/sync; an older cursor answers "reset". Default 30 days.
//   - RateLimits (package ratelimit): Disabled turns every limit off (default on).
//     Per user: Messages 50 and Reactions 50 per 10s, Media 30 per 60s,
//     Writes (every other chat write) 100 per 10s. Per IP: SignUps 10 per hour,
//     SignIns 30 per 60s, AccountEmails 5 per 10 min, RealtimeConnects 120 per 60s.
//   - NATS: URL and SubjectPrefix (default "pbchat") join a writer and realtime
//     nodes over NATS. Empty: one process. PresenceTimeout (default 45s): how
//     long a silent realtime node's users stay online (nodes report every third).
//   - Notifications: Window (coalescing, default 10s), MaxAttempts (default 8),
//     RetryBackoff (default 2s, doubled per retry), Subject (VAPID), Webhooks
//     ([]WebhookConfig{URL, Secret}); Disabled turns notifications off.
type Config = chat.Settings

// ReactionRules is Config.Reactions: a reaction mode or an allowed list.
type ReactionRules = chat.ReactionRules

// RoomDefaults is an entry of Config.RoomDefaults: a room type's creator
// and member permissions.
type RoomDefaults = chat.RoomDefaults

// Permissions is a set of chat permissions (can_add_users, …).
type Permissions = chat.Permissions

// NATSConfig is Config.NATS.
type NATSConfig = chat.NATSConfig

// NotificationSettings is Config.Notifications: Web Push and webhook
// notifications of new messages (package notify).
type NotificationSettings = chat.NotificationSettings

// WebhookConfig is one of NotificationSettings.Webhooks.
type WebhookConfig = chat.WebhookConfig

// RateLimits is Config.RateLimits; PocketBase's rate limit settings hold
// them under the labels of package ratelimit (pbchat:messages, …).
type RateLimits = chat.RateLimits

// RateLimit is one of RateLimits: MaxRequests per Duration.
type RateLimit = chat.RateLimit

// The reaction modes of ReactionRules.
const (
	ReactionsEmoji       = chat.ReactionsEmoji
	ReactionsLikeDislike = chat.ReactionsLikeDislike
	ReactionsCustom      = chat.ReactionsCustom
)

// The accounts `chat demo` creates (package demo): alice, bob, carol and
// dave @example.com share DemoPassword; the superuser is DemoAdminEmail.
const (
	DemoPassword      = demo.Password
	DemoAdminEmail    = demo.AdminEmail
	DemoAdminPassword = demo.AdminPassword
)

// MustRegister is Register that panics on error.
func MustRegister(app core.App, config Config) {
	if err := Register(app, config); err != nil {
		panic(err)
	}
}

// Register adds pbchat to app.
func Register(app core.App, config Config) error {
	settings, err := config.WithDefaults()
	if err != nil {
		return err
	}

	broker, err := newBroker(app, settings)
	if err != nil {
		return err
	}
	queryguard.Bind(app)
	hub := realtime.NewHub(broker, app.Logger())
	hub.Bind(app, settings)
	hooks.Bind(app, settings, func(event chat.Event) {
		if err := hub.Publish(event); err != nil {
			app.Logger().Error("pbchat realtime: publish", "type", event.Type, "room", event.Room, "error", err)
		}
	})
	notify.Bind(app, settings, hub)
	if err := bindPresence(app, settings, hub, broker); err != nil {
		return err
	}

	// serve has run PocketBase's own migrations (the users collection among
	// them) by the time OnServe fires.
	app.OnServe().BindFunc(func(se *core.ServeEvent) error {
		if err := migrations.Run(se.App, settings); err != nil {
			return err
		}
		return se.Next()
	})
	if app.IsBootstrapped() {
		if err := migrations.Run(app, settings); err != nil {
			return err
		}
	}

	if err := ratelimit.Bind(app, settings); err != nil {
		return err
	}

	if pb, ok := app.(*pocketbase.PocketBase); ok {
		pb.RootCmd.AddCommand(newChatCommand(app, settings))
	}
	return nil
}

// newBroker is the in-process broker, or NATS when Config.NATS.URL is set
// (closed when the app terminates).
func newBroker(app core.App, settings chat.Settings) (realtime.Broker, error) {
	if settings.NATS.URL == "" {
		return realtime.NewLocalBroker(), nil
	}
	broker, err := realtime.ConnectNATS(settings.NATS, "pbchat-writer", app.Logger())
	if err != nil {
		return nil, err
	}
	app.OnTerminate().BindFunc(func(e *core.TerminateEvent) error {
		broker.Close()
		return e.Next()
	})
	return broker, nil
}
