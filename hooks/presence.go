package hooks

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/types"

	"github.com/pbchat/pbchat/internal/chat"
	"github.com/pbchat/pbchat/migrations"
)

// maxPresenceUsers bounds the ids of one GET /api/chat/presence?users=.
const maxPresenceUsers = 500

// PresenceTable answers who is online now, on the writer and on every
// realtime node (realtime.Presence).
type PresenceTable interface {
	Online(users ...string) map[string]bool
	OnlineUsers() []string
}

// Presence serves GET /api/chat/presence and turns presence changes into
// last_online rows and presence.* events to the users who share a room.
type Presence struct {
	app      core.App
	settings chat.Settings
	table    PresenceTable
	publish  chat.Publisher
}

// presenceState is one user's entry in the route's answer and an event's record.
type presenceState struct {
	User       string `json:"user,omitempty"`
	Online     bool   `json:"online"`
	LastOnline string `json:"last_online"`
}

// BindPresence binds the presence route and the clean-up of a deleted
// user's row; the caller hands the returned Presence's Changed every change.
func BindPresence(app core.App, settings chat.Settings, table PresenceTable, publish chat.Publisher) *Presence {
	p := &Presence{app: app, settings: settings, table: table, publish: publish}
	app.OnServe().BindFunc(func(se *core.ServeEvent) error {
		se.Router.GET("/api/chat/presence", p.route).Bind(apis.RequireAuth(settings.UsersCollection))
		return se.Next()
	})
	app.OnRecordAfterDeleteSuccess(settings.UsersCollection).BindFunc(func(e *core.RecordEvent) error {
		if _, err := e.App.DB().Delete(migrations.PresenceTable, dbx.HashExp{"user": e.Record.Id}).Execute(); err != nil {
			e.App.Logger().Error("pbchat presence: forget a deleted user", "user", e.Record.Id, "error", err)
		}
		return e.Next()
	})
	return p
}

// route serves GET /api/chat/presence?users=ID,ID: each of those users (all
// when users is absent) who shares a room with the caller, online or not and
// last online when. Others are left out, as ids that do not exist.
func (p *Presence) route(e *core.RequestEvent) error {
	me := authUserID(e, p.settings)
	var only []string
	if raw := e.Request.URL.Query().Get("users"); raw != "" {
		for _, id := range strings.Split(raw, ",") {
			if id = strings.TrimSpace(id); id != "" && !slices.Contains(only, id) {
				only = append(only, id)
			}
		}
		if len(only) > maxPresenceUsers {
			return e.BadRequestError("Too many users.", fieldError("users", "validation_too_many",
				fmt.Sprintf("at most %d user ids", maxPresenceUsers)))
		}
		if len(only) == 0 {
			return e.JSON(http.StatusOK, map[string]any{"users": map[string]presenceState{}})
		}
	}
	rows, err := p.roommates(e.App, me, only)
	if err != nil {
		return e.InternalServerError("", err)
	}
	ids := make([]string, len(rows))
	for i, row := range rows {
		ids[i] = row.User
	}
	online := p.table.Online(ids...)
	out := make(map[string]presenceState, len(rows))
	for _, row := range rows {
		out[row.User] = presenceState{Online: online[row.User], LastOnline: row.LastOnline}
	}
	return e.JSON(http.StatusOK, map[string]any{"users": out})
}

type roommate struct {
	User       string `db:"user"`
	LastOnline string `db:"last_online"`
}

// roommates returns the users who share a room with user (only those of
// only, when given) and when each was last online.
func (p *Presence) roommates(app core.App, user string, only []string) ([]roommate, error) {
	q := app.DB().Select("theirs.user AS user", "COALESCE(p.last_online, '') AS last_online").Distinct(true).
		From(chat.CollectionRoomUsers+" mine").
		InnerJoin(chat.CollectionRoomUsers+" theirs", dbx.NewExp("theirs.room = mine.room")).
		LeftJoin(migrations.PresenceTable+" p", dbx.NewExp("p.user = theirs.user")).
		Where(dbx.HashExp{"mine.user": user}).
		AndWhere(dbx.Not(dbx.HashExp{"theirs.user": user}))
	if len(only) > 0 {
		ids := make([]any, len(only))
		for i, id := range only {
			ids[i] = id
		}
		q.AndWhere(dbx.In("theirs.user", ids...))
	}
	var rows []roommate
	if err := q.All(&rows); err != nil {
		return nil, fmt.Errorf("pbchat presence: roommates of %s: %w", user, err)
	}
	return rows, nil
}

// Changed records a user coming online or going offline at at (last_online
// when offline) and tells the users online who share a room with them.
// Presence events are not logged: a client reads the state after a
// reconnect from the route.
func (p *Presence) Changed(user string, online bool, at time.Time) {
	if err := p.changed(user, online, at); err != nil {
		p.app.Logger().Error("pbchat presence: change", "user", user, "online", online, "error", err)
	}
}

func (p *Presence) changed(user string, online bool, at time.Time) error {
	state := presenceState{User: user, Online: online}
	if online {
		if err := p.app.DB().Select("last_online").From(migrations.PresenceTable).
			Where(dbx.HashExp{"user": user}).Row(&state.LastOnline); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("read last_online: %w", err)
		}
	} else {
		dt, err := types.ParseDateTime(at)
		if err != nil {
			return err
		}
		state.LastOnline = dt.String()
		if err := p.saveLastOnline(state.LastOnline, user); err != nil {
			return err
		}
	}
	rows, err := p.roommates(p.app, user, nil)
	if err != nil {
		return err
	}
	ids := make([]string, len(rows))
	for i, row := range rows {
		ids[i] = row.User
	}
	var recipients []string
	for id, on := range p.table.Online(ids...) {
		if on {
			recipients = append(recipients, id)
		}
	}
	if len(recipients) == 0 {
		return nil
	}
	slices.Sort(recipients)
	record, err := json.Marshal(state)
	if err != nil {
		return err
	}
	eventType := chat.EventPresenceOffline
	if online {
		eventType = chat.EventPresenceOnline
	}
	p.publish(chat.Event{Type: eventType, Users: recipients, Record: record})
	return nil
}

// Stopped records now as the last time online of every user still online
// when the writer stops.
func (p *Presence) Stopped() {
	users := p.table.OnlineUsers()
	if len(users) == 0 {
		return
	}
	now := types.NowDateTime().String()
	if err := p.saveLastOnline(now, users...); err != nil {
		p.app.Logger().Error("pbchat presence: last_online at shutdown", "users", len(users), "error", err)
	}
}

func (p *Presence) saveLastOnline(at string, users ...string) error {
	return p.app.RunInTransaction(func(tx core.App) error {
		for _, user := range users {
			if _, err := tx.DB().NewQuery(`INSERT INTO ` + migrations.PresenceTable + ` (user, last_online)
				VALUES ({:user}, {:at}) ON CONFLICT (user) DO UPDATE SET last_online = excluded.last_online`).
				Bind(dbx.Params{"user": user, "at": at}).Execute(); err != nil {
				return fmt.Errorf("save last_online of %s: %w", user, err)
			}
		}
		return nil
	})
}
