package hooks

import (
	"errors"
	"net/http"

	validation "github.com/pocketbase/ozzo-validation/v4"
	"github.com/pocketbase/pocketbase/core"

	"github.com/pbchat/pbchat/internal/chat"
	"github.com/pbchat/pbchat/migrations"
)

type private struct{ settings chat.Settings }

// getOrCreate serves POST /api/chat/private {"user": ID}: the caller's private
// room with that user, created with both members when it does not exist yet.
func (h private) getOrCreate(e *core.RequestEvent) error {
	var body struct {
		User string `json:"user"`
	}
	if err := e.BindBody(&body); err != nil {
		return e.BadRequestError("Invalid JSON body.", err)
	}
	callerID := authUserID(e, h.settings)
	if body.User == "" {
		return e.BadRequestError("Missing user.", fieldError("user", "validation_required", "user is required"))
	}
	if body.User == callerID {
		return e.BadRequestError("A private room needs another user.", fieldError("user", "self", "a private room needs another user"))
	}
	other, err := findRecord(e.App, h.settings.UsersCollection, body.User)
	if err != nil {
		return err
	}
	if other == nil {
		return e.BadRequestError("Unknown user.", fieldError("user", "not_found", "no such user"))
	}

	room, created, err := h.findOrCreate(e.App, callerID, other.Id)
	if err != nil {
		return inputError(e, "Failed to create the private room.", err)
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return e.JSON(status, room)
}

func (h private) findOrCreate(app core.App, callerID, otherID string) (*core.Record, bool, error) {
	for attempt := 0; ; attempt++ {
		if id, err := findPrivateRoom(app, callerID, otherID); err != nil || id != "" {
			if err != nil {
				return nil, false, err
			}
			room, err := app.FindRecordById(migrations.Rooms, id)
			return room, false, err
		}
		room, err := h.create(app, callerID, otherID)
		var conflict validation.Errors
		if err != nil && attempt == 0 && errors.As(err, &conflict) && conflict["user"] != nil {
			continue // created concurrently by the other user: read theirs
		}
		return room, err == nil, err
	}
}

func (h private) create(app core.App, callerID, otherID string) (*core.Record, error) {
	var room *core.Record
	err := app.RunInTransaction(func(tx core.App) error {
		rooms, err := tx.FindCachedCollectionByNameOrId(migrations.Rooms)
		if err != nil {
			return err
		}
		room = core.NewRecord(rooms)
		room.Set("type", chat.RoomPrivateMessages)
		room.Set("created_by", callerID)
		if err := tx.Save(room); err != nil {
			return err
		}
		members, err := tx.FindCachedCollectionByNameOrId(migrations.RoomUsers)
		if err != nil {
			return err
		}
		membership := core.NewRecord(members)
		membership.Set("room", room.Id)
		membership.Set("user", otherID)
		membership.Set("created_by", callerID)
		membership.Set("permissions", h.settings.DefaultsFor(chat.RoomPrivateMessages).Member)
		return tx.Save(membership)
	})
	return room, err
}
