package migrations

import (
	"fmt"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/types"

	"github.com/pbchat/pbchat/internal/chat"
)

// Moderation: two collections and two fields.
const (
	// RoomBans holds who is banned from which room, until when.
	RoomBans = chat.CollectionRoomBans
	// MessageReports holds members' reports of messages.
	MessageReports = chat.CollectionMessageReports
)

const moderationMigration = "1764000011_pbchat_moderation.go"

// moderatorOf is the rule "a member of the record's room (reached by
// roomPath) holding permission": both conditions are on the same joined
// membership row (PocketBase joins one path once), and :each compares the
// permission with each value of the multiple select (plain ?= would compare
// the whole list).
func moderatorOf(isUser, roomPath, permission string) string {
	return fmt.Sprintf(`%s && %schat_room_users_via_room.user ?= @request.auth.id && %schat_room_users_via_room.permissions:each ?= %q`,
		isUser, roomPath, roomPath, permission)
}

// createModeration adds chat_rooms.slow_mode_seconds,
// chat_room_users.silenced_until, chat_room_bans and chat_message_reports.
// Each step is skipped when done (the migration runs again after a
// history-sync).
func createModeration(app core.App, settings chat.Settings) error {
	users, err := app.FindCollectionByNameOrId(settings.UsersCollection)
	if err != nil {
		return fmt.Errorf("pbchat: users collection %q: %w", settings.UsersCollection, err)
	}
	rooms, err := app.FindCollectionByNameOrId(Rooms)
	if err != nil {
		return fmt.Errorf("pbchat: %s: %w", Rooms, err)
	}
	if rooms.Fields.GetByName("slow_mode_seconds") == nil {
		rooms.Fields.Add(&core.NumberField{Name: "slow_mode_seconds", Min: types.Pointer(0.0), Max: types.Pointer(float64(chat.MaxSlowModeSeconds)), OnlyInt: true})
		if err := app.Save(rooms); err != nil {
			return fmt.Errorf("pbchat: add %s.slow_mode_seconds: %w", Rooms, err)
		}
	}
	members, err := app.FindCollectionByNameOrId(RoomUsers)
	if err != nil {
		return fmt.Errorf("pbchat: %s: %w", RoomUsers, err)
	}
	if members.Fields.GetByName("silenced_until") == nil {
		members.Fields.Add(&core.DateField{Name: "silenced_until"})
		if err := app.Save(members); err != nil {
			return fmt.Errorf("pbchat: add %s.silenced_until: %w", RoomUsers, err)
		}
	}
	messages, err := app.FindCollectionByNameOrId(Messages)
	if err != nil {
		return fmt.Errorf("pbchat: %s: %w", Messages, err)
	}

	isUser := fmt.Sprintf(`@request.auth.id != "" && @request.auth.collectionName = %q`, users.Name)
	if _, err := app.FindCollectionByNameOrId(RoomBans); err != nil {
		bans := core.NewBaseCollection(RoomBans)
		bans.Fields.Add(
			relation("room", rooms.Id, true, true),
			relation("user", users.Id, true, true),
			&core.DateField{Name: "until"},
			&core.TextField{Name: "reason", Max: chat.MaxReportReason},
			relation("created_by", users.Id, false, false),
		)
		bans.Fields.Add(timestamps()...)
		bans.AddIndex("idx_chat_room_bans_room_user", true, "room, user", "")
		// Members holding can_remove_users list, ban and unban; changing a
		// ban (its until) is the dashboard's.
		moderators := moderatorOf(isUser, "room.", chat.CanRemoveUsers)
		bans.ListRule, bans.ViewRule, bans.CreateRule, bans.DeleteRule = &moderators, &moderators, &isUser, &moderators
		if err := app.Save(bans); err != nil {
			return fmt.Errorf("pbchat: create %s: %w", RoomBans, err)
		}
	}

	if _, err := app.FindCollectionByNameOrId(MessageReports); err != nil {
		reports := core.NewBaseCollection(MessageReports)
		reports.Fields.Add(
			relation("message", messages.Id, true, true),
			relation("reporter", users.Id, true, true),
			&core.TextField{Name: "reason", Required: true, Max: chat.MaxReportReason},
			// The message's room, set by the server: moderators filter by it.
			relation("room", rooms.Id, false, true),
		)
		reports.Fields.Add(timestamps()...)
		reports.AddIndex("idx_chat_message_reports_message_reporter", true, "message, reporter", "")
		reports.AddIndex("idx_chat_message_reports_room", false, "room, created", "")
		reports.AddIndex("idx_chat_message_reports_reporter", false, "reporter", "")
		// The reporter, and the room's members holding can_delete_messages
		// (superusers see everything); the reporter withdraws, a moderator
		// dismisses.
		visible := fmt.Sprintf(`%s && (reporter = @request.auth.id || (room.chat_room_users_via_room.user ?= @request.auth.id && room.chat_room_users_via_room.permissions:each ?= %q))`,
			isUser, chat.CanDeleteMessages)
		reports.ListRule, reports.ViewRule, reports.CreateRule, reports.DeleteRule = &visible, &visible, &isUser, &visible
		if err := app.Save(reports); err != nil {
			return fmt.Errorf("pbchat: create %s: %w", MessageReports, err)
		}
	}
	return nil
}

func dropModeration(app core.App) error {
	for _, name := range []string{MessageReports, RoomBans} {
		if c, err := app.FindCollectionByNameOrId(name); err == nil {
			if err := app.Delete(c); err != nil {
				return fmt.Errorf("pbchat: delete %s: %w", name, err)
			}
		}
	}
	for collection, field := range map[string]string{Rooms: "slow_mode_seconds", RoomUsers: "silenced_until"} {
		c, err := app.FindCollectionByNameOrId(collection)
		if err != nil || c.Fields.GetByName(field) == nil {
			continue
		}
		c.Fields.RemoveByName(field)
		if err := app.Save(c); err != nil {
			return fmt.Errorf("pbchat: remove %s.%s: %w", collection, field, err)
		}
	}
	return nil
}
