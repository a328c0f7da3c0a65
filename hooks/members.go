package hooks

import (
	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"github.com/pbchat/pbchat/internal/chat"
	"github.com/pbchat/pbchat/migrations"
)

type members struct{ settings chat.Settings }

// createRequest decides who may add whom with which permissions:
// a member holding can_add_users adds others with permissions they hold
// themselves; anybody joins a public room as themselves with its defaults.
func (h members) createRequest(e *core.RecordRequestEvent) error {
	info, err := e.RequestInfo()
	if err != nil {
		return err
	}
	_, explicit := info.Body["permissions"]
	requested := chat.Permissions(e.Record.GetStringSlice("permissions"))
	if err := requested.Validate(); err != nil {
		// 400 on the field, not a 403 naming a non-permission.
		return e.BadRequestError("Invalid permissions.", fieldError("permissions", "invalid_permission", err.Error()))
	}

	room, err := findRecord(e.App, migrations.Rooms, e.Record.GetString("room"))
	if err != nil {
		return err
	}
	if room == nil {
		if isSuperuser(e.RequestEvent) || e.Record.GetString("room") == "" {
			return e.Next() // the relation validator answers 400 on room
		}
		// As for a room the caller cannot see: a missing id and a hidden one
		// answer alike, so guessing ids tells nothing.
		return e.NotFoundError("The room does not exist or you are not a member of it.", nil)
	}
	defaults := h.settings.DefaultsFor(room.GetString("type")).Member

	if isSuperuser(e.RequestEvent) {
		if !explicit {
			e.Record.Set("permissions", defaults)
		}
		return e.Next()
	}

	actorID := authUserID(e.RequestEvent, h.settings)
	access, err := loadRoomAccess(e.App, room.Id, actorID)
	if err != nil {
		return err
	}
	selfJoin := access.membership == nil && access.room.GetBool("is_public") && e.Record.GetString("user") == actorID
	granted := requested
	if selfJoin {
		if !explicit {
			granted = defaults
		} else if err := chat.CheckOwnPermissionChange(defaults, requested); err != nil {
			return forbidden(e.RequestEvent, err)
		}
	} else {
		if err := requireMember(e.RequestEvent, access, chat.CanAddUsers); err != nil {
			return err
		}
		if !explicit {
			// The room's defaults, but never more than the adder holds.
			granted = defaults.Intersect(access.permissions())
		}
		if err := chat.CheckGrant(access.permissions(), granted); err != nil {
			return forbidden(e.RequestEvent, err)
		}
	}

	e.Record.Set("permissions", granted)
	e.Record.Set("created_by", actorID)
	return e.Next()
}

// create keeps private rooms to two members and one room per pair.
func (h members) create(e *core.RecordEvent) error {
	return inTransaction(e, func(tx core.App) error {
		if err := checkPrivateRoomMember(tx, e.Record); err != nil {
			return err
		}
		return e.Next()
	})
}

func checkPrivateRoomMember(app core.App, membership *core.Record) error {
	roomID, userID := membership.GetString("room"), membership.GetString("user")
	room, err := findRecord(app, migrations.Rooms, roomID)
	if err != nil || room == nil || room.GetString("type") != chat.RoomPrivateMessages {
		return err
	}
	var others []string
	err = app.DB().Select("user").From(migrations.RoomUsers).
		Where(dbx.HashExp{"room": roomID}).AndWhere(dbx.Not(dbx.HashExp{"user": userID})).
		Column(&others)
	if err != nil {
		return err
	}
	if len(others) >= 2 {
		return fieldError("user", "private_room_full", "a private_messages room has at most two members")
	}
	if len(others) == 1 {
		existing, err := findPrivateRoom(app, others[0], userID)
		if err != nil {
			return err
		}
		if existing != "" && existing != roomID {
			return fieldError("user", "private_room_exists", "a private_messages room with these two users already exists")
		}
	}
	return nil
}

// findPrivateRoom returns the id of the private room of the pair, or "".
func findPrivateRoom(app core.App, userA, userB string) (string, error) {
	var ids []string
	err := app.DB().NewQuery(`
		SELECT r.id FROM ` + chat.CollectionRooms + ` r
		JOIN ` + chat.CollectionRoomUsers + ` a ON a.room = r.id AND a.user = {:a}
		JOIN ` + chat.CollectionRoomUsers + ` b ON b.room = r.id AND b.user = {:b}
		WHERE r.type = {:type} LIMIT 1`).
		Bind(dbx.Params{"a": userA, "b": userB, "type": chat.RoomPrivateMessages}).Column(&ids)
	if err != nil || len(ids) == 0 {
		return "", err
	}
	return ids[0], nil
}

// update keeps the membership's room and user.
func (h members) update(e *core.RecordEvent) error {
	if err := immutableWithCreator(e.App, e.Record, "room", "user"); err != nil {
		return err
	}
	return e.Next()
}

// updateRequest: members set their own muted and last_seen_at and may drop
// permissions; changing someone else's permissions needs can_add_users and
// every permission involved.
func (h members) updateRequest(e *core.RecordRequestEvent) error {
	if isSuperuser(e.RequestEvent) {
		return e.Next()
	}
	actorID := authUserID(e.RequestEvent, h.settings)
	before := chat.Permissions(e.Record.Original().GetStringSlice("permissions"))
	after := chat.Permissions(e.Record.GetStringSlice("permissions"))
	if err := after.Validate(); err != nil {
		return e.BadRequestError("Invalid permissions.", fieldError("permissions", "invalid_permission", err.Error()))
	}

	// Whose membership it is and of which room: the stored values, not the
	// request's (which the immutability hook refuses to change anyway).
	original := e.Record.Original()
	if original.GetString("user") == actorID {
		if err := chat.CheckOwnPermissionChange(before, after); err != nil {
			return forbidden(e.RequestEvent, err)
		}
		return e.Next()
	}

	for _, own := range []string{"muted", "last_seen_at"} {
		if e.Record.GetString(own) != original.GetString(own) {
			return e.ForbiddenError("Only the member may change their own "+own+".",
				fieldError(own, "own_field", "only the member may change "+own))
		}
	}
	actor, err := findMembership(e.App, original.GetString("room"), actorID)
	if err != nil {
		return err
	}
	if added, removed := chat.Diff(before, after); len(added)+len(removed) > 0 {
		if err := chat.CheckPermissionChange(permissionsOf(actor), before, after); err != nil {
			return forbidden(e.RequestEvent, err)
		}
	}
	return e.Next()
}

// deleteRequest: anybody leaves (but a private room); removing another
// member needs can_remove_users and every permission they hold.
func (h members) deleteRequest(e *core.RecordRequestEvent) error {
	actorID := authUserID(e.RequestEvent, h.settings)
	e.Record.Set(actorKey, actorID) // who, for the member_left / member_removed message
	if isSuperuser(e.RequestEvent) {
		return e.Next()
	}
	if e.Record.GetString("user") == actorID {
		room, err := findRecord(e.App, migrations.Rooms, e.Record.GetString("room"))
		if err != nil {
			return err
		}
		if room != nil && room.GetString("type") == chat.RoomPrivateMessages {
			return forbidden(e.RequestEvent, &chat.PermissionDenied{
				Permission: chat.CanDeleteRoom,
				Reason:     "nobody leaves a private_messages room; delete the room instead (can_delete_room)",
			})
		}
		return e.Next()
	}
	actor, err := findMembership(e.App, e.Record.GetString("room"), actorID)
	if err != nil {
		return err
	}
	if err := chat.CheckRemoval(permissionsOf(actor), permissionsOf(e.Record)); err != nil {
		return forbidden(e.RequestEvent, err)
	}
	return e.Next()
}
