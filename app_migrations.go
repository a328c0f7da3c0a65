package main

import (
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/types"
)

// The ready app lets signed-in users see each other (name and avatar; email
// only where emailVisibility is on), so that a chat can show who wrote what
// and find someone to talk to. PocketBase's default lets a user see only
// themself. A host app decides this for its own users collection.
func init() {
	core.AppMigrations.Register(func(app core.App) error {
		users, err := app.FindCollectionByNameOrId("users")
		if err != nil {
			return err
		}
		users.ListRule = types.Pointer(`@request.auth.id != ""`)
		users.ViewRule = types.Pointer(`@request.auth.id != ""`)
		return app.Save(users)
	}, nil, "1764000100_pbchat_app_users_visible.go")
}
