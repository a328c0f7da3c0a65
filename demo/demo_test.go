package demo_test

import (
	"maps"
	"slices"
	"testing"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tests"

	"github.com/pbchat/pbchat/chatmodule"
	"github.com/pbchat/pbchat/demo"
)

// newBareApp is a fresh, bootstrapped app in a temp dir without pbchat.
func newBareApp(t *testing.T) *tests.TestApp {
	t.Helper()
	app, err := tests.NewTestApp(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(app.Cleanup)
	return app
}

// hostConfig is a host app with its own users collection, "members", and
// reaction rules that refuse the demo's emoji.
var hostConfig = chatmodule.Config{
	UsersCollection:  "members",
	Reactions:        chatmodule.ReactionRules{Mode: chatmodule.ReactionsLikeDislike},
	MaxMessageLength: 100,
}

func TestSeed(t *testing.T) {
	app := newBareApp(t)
	if err := chatmodule.Register(app, chatmodule.Config{}); err != nil {
		t.Fatal(err)
	}
	created, err := demo.Seed(app, chatmodule.Config{})
	if err != nil || !created {
		t.Fatalf("Seed = %v, %v; want true, nil", created, err)
	}
	counts := func() map[string]int {
		out := map[string]int{}
		for _, c := range []string{"users", "chat_rooms", "chat_room_users", "chat_messages", "chat_message_reactions", core.CollectionNameSuperusers} {
			n, err := app.CountRecords(c)
			if err != nil {
				t.Fatal(err)
			}
			out[c] = int(n)
		}
		return out
	}
	first := counts()
	for c, min := range map[string]int{"users": 4, "chat_rooms": 4, "chat_room_users": 8, "chat_messages": 9, "chat_message_reactions": 3, core.CollectionNameSuperusers: 1} {
		if first[c] < min {
			t.Errorf("%s = %d after the demo, want at least %d", c, first[c], min)
		}
	}
	// Demo logins work.
	alice, err := app.FindAuthRecordByEmail("users", "alice@example.com")
	if err != nil || !alice.ValidatePassword(demo.Password) {
		t.Fatalf("demo user alice: %v", err)
	}
	admin, err := app.FindAuthRecordByEmail(core.CollectionNameSuperusers, demo.AdminEmail)
	if err != nil || !admin.ValidatePassword(demo.AdminPassword) {
		t.Fatalf("demo superuser: %v", err)
	}
	// Members added without explicit permissions got the room type's defaults
	// (a zero Config is the spec's defaults here too).
	bob, _ := app.FindAuthRecordByEmail("users", "bob@example.com")
	trip, err := app.FindFirstRecordByFilter("chat_rooms", "name = 'Weekend trip'")
	if err != nil {
		t.Fatal(err)
	}
	membership, err := app.FindFirstRecordByFilter("chat_room_users", "room = {:r} && user = {:u}", dbx.Params{"r": trip.Id, "u": bob.Id})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"can_add_users", "can_create_messages", "can_edit_own_messages", "can_delete_own_messages"}
	got := membership.GetStringSlice("permissions")
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("bob's demo permissions = %v, want the group default %v", got, want)
	}

	// Idempotent.
	created, err = demo.Seed(app, chatmodule.Config{})
	if err != nil || created {
		t.Fatalf("second Seed = %v, %v; want false, nil", created, err)
	}
	if second := counts(); !maps.Equal(first, second) {
		t.Fatalf("second Seed changed counts: %v → %v", first, second)
	}
}

// The demo fits a host app whose reaction rules refuse its emoji.
func TestSeedHostConfig(t *testing.T) {
	app := newBareApp(t)
	members := core.NewAuthCollection("members")
	members.Fields.Add(&core.TextField{Name: "name"})
	if err := app.Save(members); err != nil {
		t.Fatal(err)
	}
	if err := chatmodule.Register(app, hostConfig); err != nil {
		t.Fatal(err)
	}
	created, err := demo.Seed(app, hostConfig)
	if err != nil || !created {
		t.Fatalf("Seed = %v, %v", created, err)
	}
	if n, _ := app.CountRecords("members"); n < 4 {
		t.Errorf("demo members = %d", n)
	}
	if n, _ := app.CountRecords("chat_messages"); n == 0 {
		t.Errorf("no demo messages")
	}
}
