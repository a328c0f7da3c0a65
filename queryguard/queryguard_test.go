package queryguard_test

import (
	"errors"
	"testing"

	"github.com/pocketbase/pocketbase/core"

	"github.com/pbchat/pbchat/chatmodule"
	"github.com/pbchat/pbchat/internal/chattest"
	"github.com/pbchat/pbchat/queryguard"
)

func TestCheck(t *testing.T) {
	env := chattest.New(t, chatmodule.Config{})
	user := env.NewUser("ann")
	super := env.Superuser()
	collection := func(name string) *core.Collection {
		c, err := env.App.FindCollectionByNameOrId(name)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	for _, c := range []struct {
		collection, filter, sort string
		refused                  string // the parameter named, "" when allowed
	}{
		{"chat_messages", "room.name ~ 'x'", "", ""},
		{"chat_messages", "text != 'x' && user.name = 'ann'", "-created,user.name", ""},
		{"chat_message_reactions", "message.room.is_public = true", "", ""},
		{"chat_message_media", "media.file != '' && message.text ~ 'a'", "", ""},
		{"chat_room_users", "room.id = 'abc' && permissions:each ?= 'can_add_users'", "", ""},
		{"users", "name ~ 'a' && email = 'a@b.c'", "", ""},
		{"users", "@request.auth.id != '' && @now > created", "", ""},
		{"users", "geoDistance(1, 2, 3, 4) < 5", "", ""},
		{"users", "chat_messages_via_user.text !~ 'x'", "", "filter"},
		{"users", "(name = 'a' || (chat_room_users_via_user.room ?= 'x'))", "", "filter"},
		{"users", "", "chat_messages_via_user.text", "sort"},
		{"users", "", "-email", "sort"},
		{"chat_rooms", "chat_room_users_via_room:length > 1", "", "filter"},
		{"chat_rooms", "@collection.chat_messages.text ~ 'x'", "", "filter"},
		{"chat_rooms", "@collection.chat_messages:m.text ~ 'x'", "", "filter"},
		{"chat_rooms", "created_by.chat_rooms_via_created_by.name != 'x'", "", "filter"},
		{"chat_messages", "room.chat_room_users_via_room.user ?= 'x'", "", "filter"},
		{"chat_messages", "user.email = 'a@b.c'", "", "filter"},
		{"chat_media", "@request.auth.chat_room_users_via_user.room ?= 'x'", "", "filter"},
		{"chat_messages", "strftime('%Y', room.chat_messages_via_room.created) = '2026'", "", "filter"},
		{"chat_messages", "not a filter ((", "", ""}, // left to PocketBase
	} {
		for _, asSuper := range []bool{false, true} {
			auth := user.Record
			if asSuper {
				auth = super.Record
			}
			err := queryguard.Check(env.App, collection(c.collection), auth, c.filter, c.sort)
			var refusal *queryguard.Refusal
			switch {
			case asSuper || c.refused == "":
				if err != nil {
					t.Errorf("%s filter=%q sort=%q (superuser %v): refused: %v", c.collection, c.filter, c.sort, asSuper, err)
				}
			case !errors.As(err, &refusal) || refusal.Param != c.refused:
				t.Errorf("%s filter=%q sort=%q: got %v, want a refusal of %s", c.collection, c.filter, c.sort, err, c.refused)
			}
		}
	}
}
