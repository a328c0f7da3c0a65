package hooks

import (
	"fmt"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"github.com/pbchat/pbchat/internal/chat"
	"github.com/pbchat/pbchat/migrations"
)

type reactions struct{ settings chat.Settings }

// createRequest: any member reacts, as themselves.
func (h reactions) createRequest(e *core.RecordRequestEvent) error {
	if isSuperuser(e.RequestEvent) {
		return e.Next()
	}
	message, err := findRecord(e.App, migrations.Messages, e.Record.GetString("message"))
	if err != nil {
		return err
	}
	actorID := authUserID(e.RequestEvent, h.settings)
	if message == nil && e.Record.GetString("message") == "" {
		return e.Next() // the required validator answers 400 on message
	}
	if message == nil {
		// As for a message of a room the caller is not in: a missing id and a
		// hidden one answer alike, so guessing ids tells nothing.
		return e.NotFoundError("The message does not exist or you are not a member of its room.", nil)
	}
	access, err := loadRoomAccess(e.App, message.GetString("room"), actorID)
	if err != nil {
		return err
	}
	// Messages are members-only even in a public room: a non-member cannot
	// see the message, so reacting to it answers 404 like viewing it does
	// (and no permission would make a non-member's reaction allowed).
	if access.room == nil || access.membership == nil {
		return e.NotFoundError("The message does not exist or you are not a member of its room.", nil)
	}
	e.Record.Set("user", actorID)
	return e.Next()
}

// deleteRequest: one's own reaction, or anyone's with can_delete_messages.
func (h reactions) deleteRequest(e *core.RecordRequestEvent) error {
	actorID := authUserID(e.RequestEvent, h.settings)
	if isSuperuser(e.RequestEvent) || e.Record.GetString("user") == actorID {
		return e.Next()
	}
	message, err := findRecord(e.App, migrations.Messages, e.Record.GetString("message"))
	if err != nil {
		return err
	}
	if message == nil {
		// Deleted since PocketBase found the reaction, which went with it:
		// PocketBase's answer for a record that is not there.
		return e.NotFoundError("", nil)
	}
	membership, err := findMembership(e.App, message.GetString("room"), actorID)
	if err != nil {
		return err
	}
	if !permissionsOf(membership).Has(chat.CanDeleteMessages) {
		return forbidden(e.RequestEvent, &chat.PermissionDenied{
			Permission: chat.CanDeleteMessages,
			Reason:     "removing another member's reaction needs can_delete_messages",
		})
	}
	return e.Next()
}

// create validates the value for the configured mode; in like_dislike mode
// the new reaction replaces the user's other one on the message.
func (h reactions) create(e *core.RecordEvent) error {
	if err := h.settings.Reactions.Validate(e.Record.GetString("reaction")); err != nil {
		return fieldError("reaction", "invalid_reaction", err.Error())
	}
	if !h.settings.Reactions.Exclusive() {
		return e.Next()
	}
	return inTransaction(e, func(tx core.App) error {
		var previous []*core.Record
		err := tx.RecordQuery(migrations.MessageReacts).AndWhere(dbx.HashExp{
			"message": e.Record.GetString("message"),
			"user":    e.Record.GetString("user"),
		}).All(&previous)
		if err != nil {
			return fmt.Errorf("find previous reactions: %w", err)
		}
		for _, p := range previous {
			if p.GetString("reaction") == e.Record.GetString("reaction") {
				continue // the unique index answers
			}
			if err := tx.Delete(p); err != nil {
				return fmt.Errorf("replace reaction %s: %w", p.Id, err)
			}
		}
		return e.Next()
	})
}

func (h reactions) update(e *core.RecordEvent) error {
	if err := immutable(e.Record, "message", "user"); err != nil {
		return err
	}
	if err := h.settings.Reactions.Validate(e.Record.GetString("reaction")); err != nil {
		return fieldError("reaction", "invalid_reaction", err.Error())
	}
	return e.Next()
}
