package migrations

import (
	"fmt"

	"github.com/pocketbase/pocketbase/core"

	"github.com/pbchat/pbchat/internal/chat"
)

// pinsMigration adds pins and system messages to chat_messages and the
// can_pin_messages permission to chat_room_users.permissions.
const pinsMigration = "1764000010_pbchat_pins_system_files.go"

// Index names of the migration. The room index gains system, so unread
// counts, which skip system messages, still read the index alone.
const (
	messagesRoomIndex   = "idx_chat_messages_room_created"
	messagesPinnedIndex = "idx_chat_messages_room_pinned"
)

// addPinsAndSystem is idempotent: a second run (after the migration history
// was cleared) finds every field and leaves it be.
func addPinsAndSystem(app core.App, settings chat.Settings) error {
	users, err := app.FindCollectionByNameOrId(settings.UsersCollection)
	if err != nil {
		return fmt.Errorf("pbchat: users collection %q: %w", settings.UsersCollection, err)
	}
	messages, err := app.FindCollectionByNameOrId(Messages)
	if err != nil {
		return fmt.Errorf("pbchat: %s: %w", Messages, err)
	}
	for _, f := range []core.Field{
		&core.DateField{Name: "pinned_at"},
		relation("pinned_by", users.Id, false, false),
		&core.SelectField{Name: "system", Values: chat.SystemKinds, MaxSelect: 1},
		&core.JSONField{Name: "system_data", MaxSize: 4096},
	} {
		if messages.Fields.GetByName(f.GetName()) == nil {
			messages.Fields.Add(f)
		}
	}
	messages.AddIndex(messagesRoomIndex, false, "room, created, id, user, system", "")
	messages.AddIndex(messagesPinnedIndex, false, "room, pinned_at", "pinned_at != ''")
	if err := app.Save(messages); err != nil {
		return fmt.Errorf("pbchat: add pins and system messages to %s: %w", Messages, err)
	}

	members, err := app.FindCollectionByNameOrId(RoomUsers)
	if err != nil {
		return fmt.Errorf("pbchat: %s: %w", RoomUsers, err)
	}
	if permissions, ok := members.Fields.GetByName("permissions").(*core.SelectField); ok {
		permissions.Values = chat.AllPermissions
		permissions.MaxSelect = len(chat.AllPermissions)
		if err := app.Save(members); err != nil {
			return fmt.Errorf("pbchat: add %s to %s.permissions: %w", chat.CanPinMessages, RoomUsers, err)
		}
	}
	return nil
}

func removePinsAndSystem(app core.App) error {
	messages, err := app.FindCollectionByNameOrId(Messages)
	if err != nil {
		return fmt.Errorf("pbchat: %s: %w", Messages, err)
	}
	messages.RemoveIndex(messagesPinnedIndex)
	messages.AddIndex(messagesRoomIndex, false, "room, created, id, user", "")
	for _, name := range []string{"pinned_at", "pinned_by", "system", "system_data"} {
		messages.Fields.RemoveByName(name)
	}
	if err := app.Save(messages); err != nil {
		return fmt.Errorf("pbchat: remove pins and system messages from %s: %w", Messages, err)
	}
	return nil
}
