package hooks

import (
	"fmt"
	"strings"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/types"

	"github.com/pbchat/pbchat/internal/chat"
	"github.com/pbchat/pbchat/migrations"
)

// MediaInput is the key a chat_messages record carries its attachments under
// before it is saved: the "media" of the create request, or a []string set
// with record.Set from Go. It is an input, not a stored field.
const MediaInput = "media"

type messages struct{ settings chat.Settings }

func (h messages) createRequest(e *core.RecordRequestEvent) error {
	info, err := e.RequestInfo()
	if err != nil {
		return err
	}
	if media, ok := info.Body[MediaInput]; ok {
		e.Record.Set(MediaInput, media)
	}
	if err := checkPinFields(e); err != nil {
		return err
	}
	if isSuperuser(e.RequestEvent) {
		return e.Next()
	}
	if e.Record.GetString("room") == "" {
		// Before any lookup: a missing room is the caller's input error, not
		// a room that does not exist.
		return e.BadRequestError("Missing room.", fieldError("room", "validation_required", "room is required"))
	}
	actorID := authUserID(e.RequestEvent, h.settings)
	// A member's permissions are all this needs (its room exists: deleting
	// a room deletes its memberships); the room is read only for a
	// non-member, to tell "not found" from "not a member". One prepared
	// query per message saved.
	permissions, member, err := memberPermissions(e.App, e.Record.GetString("room"), actorID)
	if err != nil {
		return err
	}
	if !member {
		access, err := loadRoomAccess(e.App, e.Record.GetString("room"), actorID)
		if err != nil {
			return err
		}
		if err := requireMember(e.RequestEvent, access, chat.CanCreateMessages); err != nil {
			return err
		}
		permissions = access.permissions() // a member since the first read
	}
	if !permissions.Has(chat.CanCreateMessages) {
		return forbidden(e.RequestEvent, &chat.PermissionDenied{Permission: chat.CanCreateMessages})
	}
	e.Record.Set("user", actorID)
	return e.Next()
}

func (h messages) updateRequest(e *core.RecordRequestEvent) error {
	if pin, err := h.pinRequest(e); pin {
		return err
	}
	if err := checkPinFields(e); err != nil {
		return err
	}
	return h.requireAction(e, chat.EditMessage)
}

func (h messages) deleteRequest(e *core.RecordRequestEvent) error {
	// A system message records what happened to the room: it goes with the
	// room (and with a member deleted from the app), not on its own.
	if e.Record.GetString("system") != "" {
		return e.BadRequestError("System messages are deleted only with their room.",
			fieldError("system", "validation_system_message", "system messages cannot be deleted on their own"))
	}
	return h.requireAction(e, chat.DeleteMessage)
}

func (h messages) requireAction(e *core.RecordRequestEvent, action chat.MessageAction) error {
	if isSuperuser(e.RequestEvent) {
		return e.Next()
	}
	actorID := authUserID(e.RequestEvent, h.settings)
	// The stored room, not the request's: permissions are those held where
	// the message is (a new room is refused by the immutability hook).
	membership, err := findMembership(e.App, e.Record.Original().GetString("room"), actorID)
	if err != nil {
		return err
	}
	own := e.Record.Original().GetString("user") == actorID
	if err := chat.CheckMessageAction(permissionsOf(membership), action, own); err != nil {
		return forbidden(e.RequestEvent, err)
	}
	return e.Next()
}

// create validates text and attachments and writes the message with its
// chat_message_media rows in one transaction.
func (h messages) create(e *core.RecordEvent) error {
	mediaIDs, err := mediaInput(e.Record.Get(MediaInput))
	if err != nil {
		return err
	}
	if err := chat.ValidateAttachmentCount(len(mediaIDs), h.settings.MaxAttachments); err != nil {
		return fieldError(MediaInput, "too_many_attachments", err.Error())
	}
	// A system message has no text of its own: clients write it from system
	// and system_data.
	if err := chat.ValidateMessageText(e.Record.GetString("text"), len(mediaIDs), h.settings.MaxMessageLength); err != nil && !isSystemWrite(e.Record) {
		return fieldError("text", "invalid_text", err.Error())
	}
	e.Record.Set("edited_at", "")

	return inTransaction(e, func(tx core.App) error {
		if err := checkAttachable(tx, mediaIDs, e.Record.GetString("user")); err != nil {
			return err
		}
		if err := e.Next(); err != nil {
			return err
		}
		links, err := tx.FindCachedCollectionByNameOrId(migrations.MessageMedia)
		if err != nil {
			return err
		}
		for i, id := range mediaIDs {
			link := core.NewRecord(links)
			link.Set("message", e.Record.Id)
			link.Set("media", id)
			link.Set("sequence", i)
			if err := tx.Save(link); err != nil {
				return fmt.Errorf("attach media %s: %w", id, err)
			}
		}
		return nil
	})
}

// update keeps room and user, and stamps edited_at when the text changes.
func (h messages) update(e *core.RecordEvent) error {
	if err := immutable(e.Record, "room", "user"); err != nil {
		return err
	}
	original := e.Record.Original()
	text := e.Record.GetString("text")
	if text == original.GetString("text") {
		e.Record.Set("edited_at", original.Get("edited_at"))
		return e.Next()
	}
	// The attachments are counted in the transaction that writes the text:
	// one removed meanwhile (linkDelete reads the text in its own) cannot
	// leave the message with neither.
	return inTransaction(e, func(tx core.App) error {
		attachments, err := countAttachments(tx, e.Record.Id)
		if err != nil {
			return err
		}
		if err := chat.ValidateMessageText(text, attachments, h.settings.MaxMessageLength); err != nil {
			return fieldError("text", "invalid_text", err.Error())
		}
		e.Record.Set("edited_at", types.NowDateTime())
		return e.Next()
	})
}

func countAttachments(app core.App, messageID string) (int, error) {
	var n int
	err := app.DB().Select("count(*)").From(migrations.MessageMedia).
		Where(dbx.HashExp{"message": messageID}).Row(&n)
	if err != nil {
		return 0, serverError(fmt.Errorf("count attachments of %s: %w", messageID, err))
	}
	return n, nil
}

// mediaInput reads the media ids of a create request or of Go code.
func mediaInput(raw any) ([]string, error) {
	var ids []string
	switch v := raw.(type) {
	case nil:
	case string:
		if v != "" {
			ids = []string{v}
		}
	case []string:
		ids = v
	case []any:
		for _, item := range v {
			id, ok := item.(string)
			if !ok {
				return nil, fieldError(MediaInput, "invalid_media", "media must be a list of chat_media ids")
			}
			ids = append(ids, id)
		}
	default:
		return nil, fieldError(MediaInput, "invalid_media", "media must be a list of chat_media ids")
	}
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if strings.TrimSpace(id) == "" || seen[id] {
			return nil, fieldError(MediaInput, "invalid_media", "media ids must be non-empty and distinct")
		}
		seen[id] = true
	}
	return ids, nil
}
