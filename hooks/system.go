package hooks

import (
	"encoding/json"
	"fmt"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/types"

	"github.com/pbchat/pbchat/internal/chat"
	"github.com/pbchat/pbchat/migrations"
)

// System messages: chat_messages with system set, written by the server in
// the transaction of a membership create or delete and of a room rename, and
// edited by nobody. The server's own write is told from every other writer
// (records API, batch, dashboard, Go) by a mark only this package can make:
// a record value holding systemWriteMark, which nobody outside can name.

type systemMark struct{}

var systemWriteMark = &systemMark{}

// Keys of values a record carries to the model hooks, never stored:
// systemWriteKey marks the server's system message, actorKey holds who asked
// for a membership delete or a room rename (the request hooks set it; "" for
// a superuser), noSystemMessageKey (holding systemWriteMark) skips the
// message of a membership (the creator's own, written with the room).
const (
	systemWriteKey     = "@pbchat_system_write"
	actorKey           = "@pbchat_actor"
	noSystemMessageKey = "@pbchat_no_system_message"
)

// messageContentFields are what "edit" means for a system message: all of a
// message but its pin and the counters the server keeps on it.
var messageContentFields = []string{"room", "user", "text", "edited_at", "system", "system_data", "reply_to", "thread", "mentions"}

// systemGuard keeps system messages to the server (create) and unedited
// (update), for every writer; system and system_data of a member's message
// stay empty.
func systemGuard(e *core.RecordEvent) error {
	record := e.Record
	if record.IsNew() {
		if record.Get(systemWriteKey) == systemWriteMark {
			return e.Next()
		}
		for _, field := range []string{"system", "system_data"} {
			if !emptyValue(record.Get(field)) {
				return fieldError(field, "server_set", field+" is set by the server only")
			}
		}
		return e.Next()
	}
	original := record.Original()
	system := original.GetString("system") != ""
	for _, field := range messageContentFields {
		if record.Collection().Fields.GetByName(field) == nil {
			continue
		}
		if fmt.Sprint(record.Get(field)) == fmt.Sprint(original.Get(field)) {
			continue
		}
		if system {
			return fieldError(field, "system_message", "a system message cannot be edited")
		}
		if field == "system" || field == "system_data" {
			return fieldError(field, "server_set", field+" is set by the server only")
		}
	}
	return e.Next()
}

func emptyValue(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case string:
		return v == ""
	case types.JSONRaw:
		return len(v) == 0 || string(v) == "null"
	}
	return false
}

// isSystemWrite reports whether record is the server's new system message.
func isSystemWrite(record *core.Record) bool {
	return record.IsNew() && record.Get(systemWriteKey) == systemWriteMark
}

// writeSystemMessage saves a system message of kind in room, written by
// actor (its user), with data, in tx.
func writeSystemMessage(tx core.App, room, kind, actor string, data map[string]any) error {
	collection, err := tx.FindCachedCollectionByNameOrId(migrations.Messages)
	if err != nil {
		return err
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return err
	}
	message := core.NewRecord(collection)
	message.Set(systemWriteKey, systemWriteMark)
	message.Set("room", room)
	message.Set("user", actor)
	message.Set("system", kind)
	message.Set("system_data", types.JSONRaw(raw))
	if err := tx.Save(message); err != nil {
		return fmt.Errorf("system message %s in room %s: %w", kind, room, err)
	}
	return nil
}

// systemRoom returns the room of a system message, or nil when none is to be
// written: the room is gone (deleted, and its memberships with it) or private.
func systemRoom(tx core.App, roomID string) (*core.Record, error) {
	room, err := findRecord(tx, migrations.Rooms, roomID)
	if err != nil || room == nil || room.GetString("type") == chat.RoomPrivateMessages {
		return nil, err
	}
	return room, nil
}

// userExists reports whether the user of a membership still exists (a
// deleted user's memberships go with them, and tell nobody).
func userExists(tx core.App, membership *core.Record) (bool, error) {
	field, ok := membership.Collection().Fields.GetByName("user").(*core.RelationField)
	if !ok {
		return false, nil
	}
	user, err := findRecord(tx, field.CollectionId, membership.GetString("user"))
	return user != nil, err
}

// membershipMessage writes member_joined / member_added after a membership
// is created and member_left / member_removed just before one is deleted, in
// the same transaction: the member, in the room at both, gets both (realtime
// and sync never show a member a room's change from outside their
// membership). by is created_by for a create and the request's actor for a
// delete; the message's user is by, or the member when by is unknown.
func membershipMessage(added bool) func(e *core.RecordEvent) error {
	return func(e *core.RecordEvent) error {
		if e.Record.Get(noSystemMessageKey) == systemWriteMark {
			return e.Next()
		}
		return inTransaction(e, func(tx core.App) error {
			if added {
				if err := e.Next(); err != nil {
					return err
				}
			}
			if err := writeMembershipMessage(tx, e.Record, added); err != nil {
				return err
			}
			if !added {
				return e.Next()
			}
			return nil
		})
	}
}

// writeMembershipMessage writes the system message of a membership change,
// unless the room or the user is gone (a room's or a user's deletion
// cascades to memberships after the room or user itself).
func writeMembershipMessage(tx core.App, membership *core.Record, added bool) error {
	room, err := systemRoom(tx, membership.GetString("room"))
	if err != nil || room == nil {
		return err
	}
	if ok, err := userExists(tx, membership); err != nil || !ok {
		return err
	}
	user := membership.GetString("user")
	by := membership.GetString("created_by")
	if !added {
		by, _ = membership.Get(actorKey).(string)
	}
	actor := by
	if actor == "" {
		actor = user
	}
	return writeSystemMessage(tx, room.Id, chat.MembershipKind(added, user, by), actor, map[string]any{"user": user, "by": by})
}

// renameMessage writes room_renamed after a room's name changes, in the same
// transaction; its user is the request's actor, else the room's creator
// (none when neither is known).
func renameMessage(e *core.RecordEvent) error {
	original := e.Record.Original()
	if e.Record.GetString("name") == original.GetString("name") || e.Record.GetString("type") == chat.RoomPrivateMessages {
		return e.Next()
	}
	return inTransaction(e, func(tx core.App) error {
		if err := e.Next(); err != nil {
			return err
		}
		by, _ := e.Record.Get(actorKey).(string)
		actor := by
		if actor == "" {
			actor = e.Record.GetString("created_by")
		}
		if actor == "" {
			return nil
		}
		return writeSystemMessage(tx, e.Record.Id, chat.SystemRoomRenamed, actor, map[string]any{
			"user": actor, "by": by, "name": e.Record.GetString("name"), "old_name": original.GetString("name"),
		})
	})
}
