// Package demo fills an app with demo users, rooms, memberships, messages
// and reactions: what `chat demo` writes and `make serve` shows.
package demo

import (
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/types"

	"github.com/pbchat/pbchat/internal/chat"
)

// The demo accounts: the users alice, bob, carol and dave @example.com
// share Password; the superuser is AdminEmail / AdminPassword.
const (
	Password      = "pbchat-demo"
	AdminEmail    = "admin@example.com"
	AdminPassword = "pbchat-demo-admin"
)

// Logins is what `chat demo` prints.
var Logins = fmt.Sprintf(`Demo logins (password %q):
  alice@example.com  bob@example.com  carol@example.com  dave@example.com
Dashboard: http://127.0.0.1:8090/_/  %s / %s
Then run `+"`make serve`"+` (or `+"`pbchat serve`"+`) and open http://127.0.0.1:8090
`, Password, AdminEmail, AdminPassword)

// Seed writes demo users, rooms, memberships, messages and reactions
// through the app (so every hook and invariant applies). It does nothing and
// returns false when the demo users exist already. settings is the Config
// pbchat was registered with (a zero Config means the defaults here too).
func Seed(app core.App, settings chat.Settings) (bool, error) {
	settings, err := settings.WithDefaults()
	if err != nil {
		return false, err
	}
	if _, err := app.FindAuthRecordByEmail(settings.UsersCollection, "alice@example.com"); err == nil {
		return false, nil
	} else if !errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("look for demo users: %w", err)
	}

	err = app.RunInTransaction(func(tx core.App) error {
		d := seeder{app: tx, settings: settings}
		d.superuser()
		alice, bob := d.user("alice", "Alice"), d.user("bob", "Bob")
		carol, dave := d.user("carol", "Carol"), d.user("dave", "Dave")

		trip := d.room(chat.RoomGroup, "Weekend trip", "Planning the hike", false, alice)
		d.member(trip, bob, nil)
		d.member(trip, carol, nil)
		d.message(trip, alice, "Alice created a chat")
		hello := d.message(trip, bob, "Saturday works for me!")
		d.message(trip, carol, "Same here. Who brings the map?")
		d.message(trip, alice, "I will 🗺️")
		d.react(hello, alice, "👍")
		d.react(hello, carol, "🎉")

		news := d.room(chat.RoomChannel, "pbchat news", "Announcements. Readers read and react.", true, alice)
		d.member(news, bob, chat.Permissions{chat.CanAddUsers, chat.CanCreateMessages, chat.CanEditOwnMessages, chat.CanDeleteOwnMessages})
		d.member(news, carol, chat.Permissions{})
		d.message(news, alice, "Welcome to the pbchat news channel.")
		release := d.message(news, bob, "Pictures, reactions and unread counts are in.")
		d.react(release, carol, "❤️")

		direct := d.room(chat.RoomPrivateMessages, "", "", false, alice)
		d.member(direct, bob, nil)
		d.message(direct, alice, "Hi Bob, got a minute?")
		d.message(direct, bob, "Sure, what's up?")

		lobby := d.room(chat.RoomGroup, "Lobby", "A public room anybody can join", true, dave)
		d.message(lobby, dave, "Say hi!")
		return d.err
	})
	if err != nil {
		return false, fmt.Errorf("demo data: %w", err)
	}
	return true, nil
}

// seeder writes records and keeps the first error, so the script above
// reads as a story.
type seeder struct {
	app      core.App
	settings chat.Settings
	err      error
	// clock dates the demo's records a minute apart, in the order written:
	// in one transaction they would share a millisecond and read in random order.
	clock time.Time
}

func (d *seeder) save(collection string, fields map[string]any) *core.Record {
	if d.err != nil {
		return nil
	}
	c, err := d.app.FindCachedCollectionByNameOrId(collection)
	if err != nil {
		d.err = err
		return nil
	}
	record := core.NewRecord(c)
	for k, v := range fields {
		record.Set(k, v)
	}
	if d.clock.IsZero() {
		d.clock = time.Now().Add(-2 * time.Hour)
	}
	d.clock = d.clock.Add(time.Minute)
	created, err := types.ParseDateTime(d.clock)
	if err != nil {
		d.err = err
		return nil
	}
	record.SetRaw("created", created) // PocketBase's autodate keeps a value set this way
	if err := d.app.Save(record); err != nil {
		d.err = fmt.Errorf("save %s %v: %w", collection, fields, err)
		return nil
	}
	return record
}

func (d *seeder) superuser() {
	if _, err := d.app.FindAuthRecordByEmail(core.CollectionNameSuperusers, AdminEmail); err == nil {
		return
	}
	d.save(core.CollectionNameSuperusers, map[string]any{"email": AdminEmail, "password": AdminPassword})
}

func (d *seeder) user(handle, name string) *core.Record {
	return d.save(d.settings.UsersCollection, map[string]any{
		"email": handle + "@example.com", "password": Password, "name": name, "verified": true,
	})
}

func (d *seeder) room(roomType, name, description string, public bool, creator *core.Record) *core.Record {
	if creator == nil {
		return nil
	}
	room := d.save(chat.CollectionRooms, map[string]any{
		"type": roomType, "name": name, "description": description, "is_public": public, "created_by": creator.Id,
	})
	if room != nil {
		// The creator's membership came with the room, dated now: date it with the room.
		_, err := d.app.DB().Update(chat.CollectionRoomUsers, dbx.Params{"created": room.GetString("created")},
			dbx.HashExp{"room": room.Id}).Execute()
		if err != nil {
			d.err = fmt.Errorf("date the creator's membership: %w", err)
		}
	}
	return room
}

// member adds user to room with permissions, or the room type's member defaults when nil.
func (d *seeder) member(room, user *core.Record, permissions chat.Permissions) {
	if room == nil || user == nil {
		return
	}
	if permissions == nil {
		permissions = d.settings.DefaultsFor(room.GetString("type")).Member
	}
	d.save(chat.CollectionRoomUsers, map[string]any{
		"room": room.Id, "user": user.Id, "permissions": permissions, "created_by": room.GetString("created_by"),
	})
}

func (d *seeder) message(room, user *core.Record, text string) *core.Record {
	if room == nil || user == nil {
		return nil
	}
	return d.save(chat.CollectionMessages, map[string]any{"room": room.Id, "user": user.Id, "text": text})
}

func (d *seeder) react(message, user *core.Record, reaction string) {
	if message == nil || user == nil || d.settings.Reactions.Validate(reaction) != nil {
		return // the host app's reaction rules may not take the demo's emoji
	}
	d.save(chat.CollectionMessageReactions, map[string]any{"message": message.Id, "user": user.Id, "reaction": reaction})
}
