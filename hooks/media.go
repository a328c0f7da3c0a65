package hooks

import (
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/pocketbase/dbx"
	validation "github.com/pocketbase/ozzo-validation/v4"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/types"

	"github.com/pbchat/pbchat/internal/chat"
	"github.com/pbchat/pbchat/migrations"
)

type media struct{ settings chat.Settings }

func (h media) createRequest(e *core.RecordRequestEvent) error {
	for _, f := range e.Record.GetUnsavedFiles("file") {
		if f.Size <= 0 {
			return e.BadRequestError("The file is empty.", fieldError("file", "empty_file", "the file is empty (0 bytes)"))
		}
	}
	if !isSuperuser(e.RequestEvent) {
		e.Record.Set("uploaded_by", authUserID(e.RequestEvent, h.settings))
	}
	return e.Next()
}

func (h media) update(e *core.RecordEvent) error {
	if err := immutable(e.Record, "uploaded_by"); err != nil {
		return err
	}
	return e.Next()
}

// checkAttachable: every id names media uploaded by the message's author.
func checkAttachable(app core.App, mediaIDs []string, authorID string) error {
	for _, id := range mediaIDs {
		m, err := findRecord(app, migrations.Media, id)
		if err != nil {
			return err
		}
		if m == nil || m.GetString("uploaded_by") != authorID {
			return fieldError(MediaInput, "foreign_media", fmt.Sprintf("media %q does not exist or was not uploaded by the message's author", id))
		}
	}
	return nil
}

// linkSave keeps chat_message_media rows true to the author rule however
// they are written (the records API refuses them to everybody but
// superusers): created, or updated with the message and media unchanged.
func linkSave(e *core.RecordEvent) error {
	if err := immutable(e.Record, "message", "media"); err != nil {
		return err
	}
	message, err := findRecord(e.App, migrations.Messages, e.Record.GetString("message"))
	if err != nil {
		return err
	}
	if message != nil {
		if err := checkAttachable(e.App, []string{e.Record.GetString("media")}, message.GetString("user")); err != nil {
			var invalid validation.Errors
			if errors.As(err, &invalid) {
				return fieldError("media", "foreign_media", "the media was not uploaded by the message's author")
			}
			return err // the database failed: not the media's fault
		}
	}
	return e.Next()
}

// linkDelete refuses to leave a message with neither visible text nor attachment;
// a message that is itself being deleted is gone already and passes.
func linkDelete(e *core.RecordEvent) error {
	return inTransaction(e, func(tx core.App) error {
		messageID := e.Record.GetString("message")
		message, err := findRecord(tx, migrations.Messages, messageID)
		if err != nil {
			return err
		}
		if message != nil && !chat.HasVisibleText(message.GetString("text")) {
			// Deleting the author cascades to their uploads before their
			// messages: the message goes too, so let the link go.
			if gone, err := authorDeleted(tx, message); err != nil || gone {
				if err != nil {
					return err
				}
				return e.Next()
			}
			n, err := countAttachments(tx, messageID)
			if err != nil {
				return err
			}
			if n <= 1 {
				return fieldError("message", "last_attachment", "the message has no text: its last attachment cannot be removed")
			}
		}
		return e.Next()
	})
}

// authorDeleted reports whether the message's author no longer exists (the
// author record is deleted before PocketBase cascades to what references it).
func authorDeleted(app core.App, message *core.Record) (bool, error) {
	field, ok := message.Collection().Fields.GetByName("user").(*core.RelationField)
	if !ok {
		return false, nil
	}
	author, err := findRecord(app, field.CollectionId, message.GetString("user"))
	return author == nil, err
}

// deleteOrphanMedia removes media that no message uses and that is older
// than ttl, each in a transaction that checks again that it is still an
// orphan (a message may have attached it since the look-up). One that cannot
// be deleted does not keep the others: it returns how many it deleted and
// every failure.
func deleteOrphanMedia(app core.App, ttl time.Duration) (int, error) {
	cutoff := types.NowDateTime().Add(-ttl)
	var orphans []*core.Record
	if err := orphanMedia(app, cutoff).OrderBy("created").Limit(500).All(&orphans); err != nil {
		return 0, fmt.Errorf("find orphan media: %w", err)
	}
	deleted := 0
	var failures []error
	for _, m := range orphans {
		var gone bool
		err := app.RunInTransaction(func(tx core.App) error {
			still := &core.Record{}
			err := orphanMedia(tx, cutoff).AndWhere(dbx.HashExp{"chat_media.id": m.Id}).Limit(1).One(still)
			if errors.Is(err, sql.ErrNoRows) {
				return nil // attached (or deleted) meanwhile
			}
			if err != nil {
				return err
			}
			gone = true
			return tx.Delete(still)
		})
		switch {
		case err != nil:
			failures = append(failures, fmt.Errorf("delete orphan media %s: %w", m.Id, err))
		case gone:
			deleted++
		}
	}
	return deleted, errors.Join(failures...)
}

// orphanMedia selects the media created before cutoff that no message uses.
func orphanMedia(app core.App, cutoff types.DateTime) *dbx.SelectQuery {
	return app.RecordQuery(migrations.Media).
		AndWhere(dbx.NewExp("[[chat_media.created]] < {:cutoff}", dbx.Params{"cutoff": cutoff.String()})).
		AndWhere(dbx.NewExp("NOT EXISTS (SELECT 1 FROM [[chat_message_media]] WHERE [[chat_message_media.media]] = [[chat_media.id]])"))
}
