package hooks

import (
	"fmt"

	"github.com/pocketbase/pocketbase/core"

	"github.com/pbchat/pbchat/internal/chat"
	"github.com/pbchat/pbchat/migrations"
)

type rooms struct{ settings chat.Settings }

// createRequest: chat users create group and channel rooms as themselves;
// private rooms come only from POST /api/chat/private, which keeps one per pair.
func (h rooms) createRequest(e *core.RecordRequestEvent) error {
	if isSuperuser(e.RequestEvent) {
		return e.Next()
	}
	if e.Record.GetString("type") == chat.RoomPrivateMessages {
		return e.BadRequestError("Private rooms are created with POST /api/chat/private.",
			fieldError("type", "private_via_route", "private_messages rooms are created with POST /api/chat/private"))
	}
	e.Record.Set("created_by", authUserID(e.RequestEvent, h.settings))
	return e.Next()
}

// create makes the creator a member with the room type's creator permissions
// in the same transaction as the room.
func (h rooms) create(e *core.RecordEvent) error {
	creatorID := e.Record.GetString("created_by")
	if creatorID == "" {
		return e.Next()
	}
	return inTransaction(e, func(tx core.App) error {
		if err := e.Next(); err != nil {
			return err
		}
		members, err := tx.FindCachedCollectionByNameOrId(migrations.RoomUsers)
		if err != nil {
			return err
		}
		membership := core.NewRecord(members)
		membership.Set("room", e.Record.Id)
		membership.Set("user", creatorID)
		membership.Set("created_by", creatorID)
		membership.Set("permissions", h.settings.DefaultsFor(e.Record.GetString("type")).Creator)
		membership.Set(noSystemMessageKey, systemWriteMark) // the room is new: nobody to tell
		if err := tx.Save(membership); err != nil {
			return fmt.Errorf("add the creator to room %s: %w", e.Record.Id, err)
		}
		return nil
	})
}

// update keeps type and created_by as they were created.
func (h rooms) update(e *core.RecordEvent) error {
	if err := immutableWithCreator(e.App, e.Record, "type"); err != nil {
		return err
	}
	return e.Next()
}

func (h rooms) updateRequest(e *core.RecordRequestEvent) error {
	e.Record.Set(actorKey, authUserID(e.RequestEvent, h.settings)) // who, for room_renamed
	return h.requirePermission(e, chat.CanEditRoom)
}

func (h rooms) deleteRequest(e *core.RecordRequestEvent) error {
	return h.requirePermission(e, chat.CanDeleteRoom)
}

func (h rooms) requirePermission(e *core.RecordRequestEvent, permission string) error {
	if isSuperuser(e.RequestEvent) {
		return e.Next()
	}
	membership, err := findMembership(e.App, e.Record.Id, authUserID(e.RequestEvent, h.settings))
	if err != nil {
		return err
	}
	if !permissionsOf(membership).Has(permission) {
		return forbidden(e.RequestEvent, &chat.PermissionDenied{Permission: permission})
	}
	return e.Next()
}

// immutable refuses a change to any of fields after creation.
func immutable(record *core.Record, fields ...string) error {
	if record.IsNew() {
		return nil
	}
	original := record.Original()
	for _, field := range fields {
		if fmt.Sprint(record.Get(field)) != fmt.Sprint(original.Get(field)) {
			return fieldError(field, "immutable", field+" cannot change after creation")
		}
	}
	return nil
}

// immutableWithCreator is immutable for fields and created_by, except that
// created_by may go empty when the user it named was deleted: PocketBase
// unsets non-cascading relations to a deleted record, which is not a change
// the immutability rule is about.
func immutableWithCreator(app core.App, record *core.Record, fields ...string) error {
	creatorDeleted, err := relationTargetDeleted(app, record, "created_by")
	if err != nil {
		return err
	}
	if !creatorDeleted {
		fields = append(fields[:len(fields):len(fields)], "created_by")
	}
	return immutable(record, fields...)
}

// relationTargetDeleted reports whether the relation field ref of record
// was emptied because the record it named no longer exists.
func relationTargetDeleted(app core.App, record *core.Record, ref string) (bool, error) {
	if record.IsNew() || record.GetString(ref) != "" || record.Original().GetString(ref) == "" {
		return false, nil
	}
	relation, ok := record.Collection().Fields.GetByName(ref).(*core.RelationField)
	if !ok {
		return false, nil
	}
	target, err := findRecord(app, relation.CollectionId, record.Original().GetString(ref))
	if err != nil {
		return false, err
	}
	return target == nil, nil
}
