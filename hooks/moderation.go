package hooks

import (
	"fmt"
	"time"

	"github.com/pocketbase/dbx"
	validation "github.com/pocketbase/ozzo-validation/v4"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/router"
	"github.com/pocketbase/pocketbase/tools/types"

	"github.com/pbchat/pbchat/internal/chat"
	"github.com/pbchat/pbchat/migrations"
)

// Moderation: bans (chat_room_bans), silence (chat_room_users.silenced_until),
// slow mode (chat_rooms.slow_mode_seconds) and reports
// (chat_message_reports). Bans and reports are no room events: their
// collections are outside the event log and the hub; PocketBase's own
// realtime serves them under their API rules (moderators, reporters). A ban
// removes the membership, which is the usual member.left event.
type moderation struct{ settings chat.Settings }

// bindModeration attaches the moderation hooks (hooks.Bind calls it).
func bindModeration(app core.App, settings chat.Settings) {
	m := moderation{settings}

	// Invariants: every writer.
	app.OnRecordCreate(migrations.RoomBans).BindFunc(m.banCreate)
	app.OnRecordUpdate(migrations.RoomBans).BindFunc(m.banUpdate)
	app.OnRecordCreate(migrations.RoomUsers).BindFunc(m.memberCreate)
	app.OnRecordCreate(migrations.Rooms).BindFunc(m.roomSave)
	app.OnRecordUpdate(migrations.Rooms).BindFunc(m.roomSave)
	app.OnRecordCreate(migrations.Messages).BindFunc(m.messageCreate)
	app.OnRecordCreate(migrations.MessageReports).BindFunc(m.reportCreate)
	app.OnRecordUpdate(migrations.MessageReports).BindFunc(m.reportUpdate)

	// Permissions: who asks.
	app.OnRecordCreateRequest(migrations.RoomBans).BindFunc(m.banCreateRequest)
	app.OnRecordCreateRequest(migrations.RoomUsers).BindFunc(m.memberCreateRequest)
	app.OnRecordUpdateRequest(migrations.RoomUsers).BindFunc(m.memberUpdateRequest)
	app.OnRecordCreateRequest(migrations.Messages).BindFunc(m.messageCreateRequest)
	app.OnRecordCreateRequest(migrations.MessageReports).BindFunc(m.reportCreateRequest)
}

// banCreateRequest: a member holding can_remove_users bans a user who holds
// no permission the banner lacks ("not above me"), never themselves.
func (m moderation) banCreateRequest(e *core.RecordRequestEvent) error {
	if isSuperuser(e.RequestEvent) {
		return e.Next()
	}
	roomID := e.Record.GetString("room")
	if roomID == "" {
		return e.BadRequestError("Missing room.", fieldError("room", "validation_required", "room is required"))
	}
	actorID := authUserID(e.RequestEvent, m.settings)
	access, err := loadRoomAccess(e.App, roomID, actorID)
	if err != nil {
		return err
	}
	if err := requireMember(e.RequestEvent, access, chat.CanRemoveUsers); err != nil {
		return err
	}
	userID := e.Record.GetString("user")
	target, err := findMembership(e.App, roomID, userID)
	if err != nil {
		return err
	}
	if err := chat.CheckBan(access.permissions(), permissionsOf(target), userID == actorID); err != nil {
		return forbidden(e.RequestEvent, err)
	}
	e.Record.Set("created_by", actorID)
	return e.Next()
}

// banCreate refuses a ban already over, replaces the pair's expired ban and
// removes the banned user's membership, all in the ban's transaction.
func (m moderation) banCreate(e *core.RecordEvent) error {
	now := time.Now()
	if err := chat.ValidateBanUntil(e.Record.GetDateTime("until").Time(), now); err != nil {
		return fieldError("until", "invalid_until", err.Error())
	}
	return inTransaction(e, func(tx core.App) error {
		roomID, userID := e.Record.GetString("room"), e.Record.GetString("user")
		previous, err := findBan(tx, roomID, userID)
		if err != nil {
			return err
		}
		if previous != nil && !chat.BanActive(previous.GetDateTime("until").Time(), now) {
			if err := tx.Delete(previous); err != nil {
				return fmt.Errorf("replace the expired ban of %s in room %s: %w", userID, roomID, err)
			}
		}
		if err := e.Next(); err != nil {
			return err
		}
		membership, err := findMembership(tx, roomID, userID)
		if err != nil || membership == nil {
			return err
		}
		if err := tx.Delete(membership); err != nil {
			return fmt.Errorf("remove the banned member %s from room %s: %w", userID, roomID, err)
		}
		return nil
	})
}

// banUpdate keeps a ban's room, user and author (the dashboard may change
// until and reason).
func (m moderation) banUpdate(e *core.RecordEvent) error {
	if err := immutableWithCreator(e.App, e.Record, "room", "user"); err != nil {
		return err
	}
	return e.Next()
}

// memberCreate refuses a membership of a user banned from the room, for
// every writer, in the membership's transaction.
func (m moderation) memberCreate(e *core.RecordEvent) error {
	return inTransaction(e, func(tx core.App) error {
		ban, err := findBan(tx, e.Record.GetString("room"), e.Record.GetString("user"))
		if err != nil {
			return err
		}
		if ban != nil {
			until := ban.GetDateTime("until")
			if chat.BanActive(until.Time(), time.Now()) {
				return bannedError(until)
			}
		}
		return e.Next()
	})
}

func bannedError(until types.DateTime) error {
	when := "until unbanned"
	if !until.IsZero() {
		when = "until " + until.Time().UTC().Format(time.RFC3339)
	}
	return router.NewForbiddenError(fmt.Sprintf("The user is banned from this room (%s), %s.", chat.Banned, when),
		validation.Errors{
			"permission": validation.NewError(chat.Banned, chat.Banned),
			"user":       validation.NewError(chat.Banned, "the user is banned from this room "+when),
		})
}

// findBan returns the (room, user) ban, expired or not, or nil.
func findBan(app core.App, roomID, userID string) (*core.Record, error) {
	if roomID == "" || userID == "" {
		return nil, nil
	}
	var bans []*core.Record
	err := app.RecordQuery(migrations.RoomBans).
		AndWhere(dbx.HashExp{"room": roomID, "user": userID}).
		Limit(1).
		All(&bans)
	if err != nil {
		return nil, serverError(fmt.Errorf("find the ban of %s in room %s: %w", userID, roomID, err))
	}
	if len(bans) == 0 {
		return nil, nil
	}
	return bans[0], nil
}

// memberCreateRequest: a member added already silenced is a silence, by a
// member holding can_remove_users (members.createRequest has checked the
// rest and set the permissions granted).
func (m moderation) memberCreateRequest(e *core.RecordRequestEvent) error {
	if isSuperuser(e.RequestEvent) || e.Record.GetDateTime("silenced_until").IsZero() {
		return e.Next()
	}
	actorID := authUserID(e.RequestEvent, m.settings)
	actor, err := findMembership(e.App, e.Record.GetString("room"), actorID)
	if err != nil {
		return err
	}
	granted := chat.Permissions(e.Record.GetStringSlice("permissions"))
	if err := chat.CheckSilence(permissionsOf(actor), granted, e.Record.GetString("user") == actorID); err != nil {
		return forbidden(e.RequestEvent, err)
	}
	return e.Next()
}

// memberUpdateRequest: silencing (or unsilencing) a member needs
// can_remove_users and every permission they hold; nobody changes their own.
// members.updateRequest has checked the rest of the change.
func (m moderation) memberUpdateRequest(e *core.RecordRequestEvent) error {
	original := e.Record.Original()
	if isSuperuser(e.RequestEvent) || e.Record.GetDateTime("silenced_until").Equal(original.GetDateTime("silenced_until")) {
		return e.Next()
	}
	actorID := authUserID(e.RequestEvent, m.settings)
	actor, err := findMembership(e.App, original.GetString("room"), actorID)
	if err != nil {
		return err
	}
	if err := chat.CheckSilence(permissionsOf(actor), permissionsOf(original), original.GetString("user") == actorID); err != nil {
		return forbidden(e.RequestEvent, err)
	}
	return e.Next()
}

// roomSave checks slow_mode_seconds (the schema does too; this names the
// rule in words).
func (m moderation) roomSave(e *core.RecordEvent) error {
	if err := chat.ValidateSlowMode(e.Record.GetFloat("slow_mode_seconds")); err != nil {
		return fieldError("slow_mode_seconds", "invalid_slow_mode", err.Error())
	}
	return e.Next()
}
