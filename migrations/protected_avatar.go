package migrations

import (
	"fmt"

	"github.com/pocketbase/pocketbase/core"
)

// protectedAvatarMigration makes chat_rooms.avatar a protected file: a
// download needs a file token (POST /api/files/token) and passes
// chat_rooms' view rule for the token's user, so a non-public room's avatar
// reaches its members only, and a public room's any signed-in user.
const protectedAvatarMigration = "1764000003_pbchat_protected_avatar.go"

func protectAvatar(app core.App) error { return setAvatarProtected(app, true) }

func unprotectAvatar(app core.App) error { return setAvatarProtected(app, false) }

func setAvatarProtected(app core.App, protected bool) error {
	rooms, err := app.FindCollectionByNameOrId(Rooms)
	if err != nil {
		return fmt.Errorf("pbchat: %s: %w", Rooms, err)
	}
	avatar, ok := rooms.Fields.GetByName("avatar").(*core.FileField)
	if !ok {
		return fmt.Errorf("pbchat: %s.avatar is not a file field", Rooms)
	}
	if avatar.Protected == protected {
		return nil
	}
	avatar.Protected = protected
	if err := app.Save(rooms); err != nil {
		return fmt.Errorf("pbchat: %s.avatar protected=%v: %w", Rooms, protected, err)
	}
	return nil
}
