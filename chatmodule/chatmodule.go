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
package chatmodule

import (
	"fmt"

	"github.com/pocketbase/pocketbase"
	"github.com/pocketbase/pocketbase/core"

	"github.com/pbchat/pbchat/hooks"
	"github.com/pbchat/pbchat/internal/chat"
	"github.com/pbchat/pbchat/migrations"
	"github.com/pbchat/pbchat/queryguard"
	"github.com/pbchat/pbchat/realtime"
)

// Config configures pbchat; its zero value is the spec's defaults.
// Each field is documented on chat.Settings:
//
//   - UsersCollection: the auth collection of chat users. Default "users".
//   - RoomDefaults: creator and member permissions per room type. Default: the spec's table.
//   - Reactions: Mode "emoji" (default), "like_dislike" or "custom" (MaxLength, default 32),
//     or an Allowed list that wins over the mode.
//   - MaxMessageLength: characters per message. Default 4000.
//   - MaxAttachments: media per message. Default 10.
//   - MaxMediaSize: bytes per chat_media file. Default 20 MiB.
//   - OrphanMediaTTL: how long never-attached media is kept. Default 24h.
//   - OrphanMediaCleanupSchedule: cron of the clean-up job. Default "*/10 * * * *".
//   - RateLimits: per-user limits on chat writes (see ratelimit.go). Default on:
//     50 messages and 50 reactions per 10s, 30 uploads per 60s, 100 other writes per 10s;
//     per IP 10 sign-ups per hour, 30 sign-ins per minute, 5 account e-mails per 10 min,
//     120 realtime connects per minute (see ratelimit_ip.go).
type Config = chat.Settings

// Reaction modes and room defaults, re-exported so host apps need one import.
type (
	ReactionRules = chat.ReactionRules
	RoomDefaults  = chat.RoomDefaults
	NATSConfig    = chat.NATSConfig
	Permissions   = chat.Permissions
)

const (
	ReactionsEmoji       = chat.ReactionsEmoji
	ReactionsLikeDislike = chat.ReactionsLikeDislike
	ReactionsCustom      = chat.ReactionsCustom
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

	if err := bindRateLimits(app, settings); err != nil {
		return err
	}

	if pb, ok := app.(*pocketbase.PocketBase); ok {
		pb.RootCmd.AddCommand(newChatCommand(app, settings))
	}
	return nil
}

// prepare brings a bootstrapped app's schema up to date outside of serve.
func prepare(app core.App, settings chat.Settings) error {
	if err := app.RunAllMigrations(); err != nil {
		return fmt.Errorf("pocketbase migrations: %w", err)
	}
	return migrations.Run(app, settings)
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
