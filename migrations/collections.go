// Package migrations creates pbchat's six collections: fields, indexes and
// API rules. Schema only; the rules that depend on who asks live in hooks.
package migrations

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/types"

	"github.com/pbchat/pbchat/internal/chat"
)

// Collection names, fixed by the spec (defined in internal/chat).
const (
	Rooms          = chat.CollectionRooms
	RoomUsers      = chat.CollectionRoomUsers
	Messages       = chat.CollectionMessages
	Media          = chat.CollectionMedia
	MessageMedia   = chat.CollectionMessageMedia
	MessageReacts  = chat.CollectionMessageReactions
	mediaThumbSm   = "100x100"
	mediaThumbWide = "480x0"
)

// AllCollections lists the six collection names in creation order.
var AllCollections = []string{Rooms, RoomUsers, Messages, Media, MessageMedia, MessageReacts}

var imageMimeTypes = []string{"image/jpeg", "image/png", "image/gif", "image/webp", "image/svg+xml"}

// API rules. Visibility is membership: non-members get PocketBase's 404 on
// view/update/delete and nothing in lists. Creates only need a user; the
// request hooks answer 403 naming the missing permission.
func rules(usersCollection string) map[string]map[string]*string {
	isUser := fmt.Sprintf(`@request.auth.id != "" && @request.auth.collectionName = %q`, usersCollection)
	memberOf := func(roomPath string) string {
		return isUser + " && " + roomPath + "chat_room_users_via_room.user ?= @request.auth.id"
	}
	roomVisible := isUser + ` && (is_public = true || chat_room_users_via_room.user ?= @request.auth.id)`
	mediaVisible := isUser + ` && (uploaded_by = @request.auth.id || chat_message_media_via_media.message.room.chat_room_users_via_room.user ?= @request.auth.id)`

	all := func(list, view, create, update, del *string) map[string]*string {
		return map[string]*string{"list": list, "view": view, "create": create, "update": update, "delete": del}
	}
	return map[string]map[string]*string{
		Rooms:         all(&roomVisible, &roomVisible, &isUser, &roomVisible, &roomVisible),
		RoomUsers:     all(types.Pointer(memberOf("room.")), types.Pointer(memberOf("room.")), &isUser, types.Pointer(memberOf("room.")), types.Pointer(memberOf("room."))),
		Messages:      all(types.Pointer(memberOf("room.")), types.Pointer(memberOf("room.")), &isUser, types.Pointer(memberOf("room.")), types.Pointer(memberOf("room."))),
		Media:         all(&mediaVisible, &mediaVisible, &isUser, nil, types.Pointer(isUser+" && uploaded_by = @request.auth.id")),
		MessageMedia:  all(types.Pointer(memberOf("message.room.")), types.Pointer(memberOf("message.room.")), nil, nil, nil),
		MessageReacts: all(types.Pointer(memberOf("message.room.")), types.Pointer(memberOf("message.room.")), &isUser, nil, types.Pointer(memberOf("message.room."))),
	}
}

func applyRules(c *core.Collection, r map[string]*string) {
	c.ListRule, c.ViewRule, c.CreateRule, c.UpdateRule, c.DeleteRule = r["list"], r["view"], r["create"], r["update"], r["delete"]
}

func timestamps() []core.Field {
	return []core.Field{
		&core.AutodateField{Name: "created", OnCreate: true},
		&core.AutodateField{Name: "updated", OnCreate: true, OnUpdate: true},
	}
}

func relation(name, collectionId string, required, cascade bool) *core.RelationField {
	return &core.RelationField{Name: name, CollectionId: collectionId, MaxSelect: 1, Required: required, CascadeDelete: cascade}
}

// createCollections builds and saves the six collections for settings.
func createCollections(app core.App, settings chat.Settings) error {
	users, err := app.FindCollectionByNameOrId(settings.UsersCollection)
	if err != nil {
		return fmt.Errorf("pbchat: users collection %q: %w", settings.UsersCollection, err)
	}
	if !users.IsAuth() {
		return fmt.Errorf("pbchat: users collection %q is not an auth collection", settings.UsersCollection)
	}
	r := rules(users.Name)
	var created []*core.Collection
	save := func(c *core.Collection) error {
		created = append(created, c)
		c.Fields.Add(timestamps()...)
		if err := app.Save(c); err != nil {
			return fmt.Errorf("pbchat: create %s: %w", c.Name, err)
		}
		return nil
	}

	rooms := core.NewBaseCollection(Rooms)
	rooms.Fields.Add(
		&core.TextField{Name: "name", Max: 255, Presentable: true},
		&core.TextField{Name: "description", Max: 2000},
		&core.FileField{Name: "avatar", MaxSelect: 1, MaxSize: 5 << 20, MimeTypes: imageMimeTypes, Thumbs: []string{mediaThumbSm}},
		&core.SelectField{Name: "type", Values: chat.RoomTypes, MaxSelect: 1, Required: true},
		&core.BoolField{Name: "is_public"},
		relation("created_by", users.Id, false, false),
	)
	rooms.AddIndex("idx_chat_rooms_public", false, "is_public", "is_public = TRUE")
	if err := save(rooms); err != nil {
		return err
	}

	members := core.NewBaseCollection(RoomUsers)
	members.Fields.Add(
		relation("room", rooms.Id, true, true),
		relation("user", users.Id, true, true),
		&core.SelectField{Name: "permissions", Values: chat.AllPermissions, MaxSelect: len(chat.AllPermissions)},
		&core.BoolField{Name: "muted"},
		&core.DateField{Name: "last_seen_at"},
		relation("created_by", users.Id, false, false),
	)
	members.AddIndex("idx_chat_room_users_room_user", true, "room, user", "")
	members.AddIndex("idx_chat_room_users_user", false, "user, room", "")
	if err := save(members); err != nil {
		return err
	}

	messages := core.NewBaseCollection(Messages)
	messages.Fields.Add(
		relation("room", rooms.Id, true, true),
		relation("user", users.Id, true, true),
		&core.TextField{Name: "text", Max: settings.MaxMessageLength, Presentable: true},
		&core.DateField{Name: "edited_at"},
	)
	// (room, created, id, user) serves every per-room read from the index
	// alone: a history page sorted by created and id, a room's last message,
	// and unread counts, which compare user.
	messages.AddIndex("idx_chat_messages_room_created", false, "room, created, id, user", "")
	messages.AddIndex("idx_chat_messages_user", false, "user", "")
	if err := save(messages); err != nil {
		return err
	}

	media := core.NewBaseCollection(Media)
	media.Fields.Add(
		&core.FileField{Name: "file", MaxSelect: 1, Required: true, Protected: true, MaxSize: settings.MaxMediaSize, MimeTypes: settings.MediaTypes, Thumbs: []string{mediaThumbSm, mediaThumbWide}},
		relation("uploaded_by", users.Id, false, true),
	)
	media.AddIndex("idx_chat_media_uploaded_by", false, "uploaded_by", "")
	media.AddIndex("idx_chat_media_created", false, "created", "")
	if err := save(media); err != nil {
		return err
	}

	links := core.NewBaseCollection(MessageMedia)
	links.Fields.Add(
		relation("message", messages.Id, true, true),
		relation("media", media.Id, true, true),
		&core.NumberField{Name: "sequence", Min: types.Pointer(0.0), OnlyInt: true},
	)
	links.AddIndex("idx_chat_message_media_message_sequence", true, "message, sequence", "")
	links.AddIndex("idx_chat_message_media_media", false, "media", "")
	if err := save(links); err != nil {
		return err
	}

	reactions := core.NewBaseCollection(MessageReacts)
	reactions.Fields.Add(
		relation("message", messages.Id, true, true),
		relation("user", users.Id, true, true),
		&core.TextField{Name: "reaction", Required: true, Max: 255},
	)
	reactions.AddIndex("idx_chat_message_reactions_unique", true, "message, user, reaction", "")
	if err := save(reactions); err != nil {
		return err
	}

	// Rules reach across collections (chat_rooms' rule reads its members),
	// so they go in once all six exist.
	for _, c := range created {
		applyRules(c, r[c.Name])
		if err := app.Save(c); err != nil {
			return fmt.Errorf("pbchat: API rules of %s: %w", c.Name, err)
		}
	}
	return nil
}

// collectionsInstalled reports whether pbchat's collections exist: true
// when all six do, false when none does, and an error naming the missing
// ones when only some do (pbchat would not work, and creating them anew
// would not bring back their data).
func collectionsInstalled(app core.App) (bool, error) {
	var missing []string
	for _, name := range AllCollections {
		_, err := app.FindCollectionByNameOrId(name)
		if errors.Is(err, sql.ErrNoRows) {
			missing = append(missing, name)
			continue
		}
		if err != nil {
			return false, fmt.Errorf("pbchat: %s: %w", name, err)
		}
	}
	switch len(missing) {
	case 0:
		return true, nil
	case len(AllCollections):
		return false, nil
	}
	return false, fmt.Errorf("pbchat: collections %s are missing while the others exist; restore them from a backup",
		strings.Join(missing, ", "))
}

func deleteCollections(app core.App) error {
	for i := len(AllCollections) - 1; i >= 0; i-- {
		c, err := app.FindCollectionByNameOrId(AllCollections[i])
		if err != nil {
			continue // already gone
		}
		if err := app.Delete(c); err != nil {
			return fmt.Errorf("pbchat: delete %s: %w", c.Name, err)
		}
	}
	return nil
}
