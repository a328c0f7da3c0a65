package chatmodule_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tests"
	"github.com/pocketbase/pocketbase/tools/types"

	"github.com/pbchat/pbchat/chatmodule"
	"github.com/pbchat/pbchat/internal/chattest"
)

const (
	roomsPath     = "/api/collections/chat_rooms/records"
	membersPath   = "/api/collections/chat_room_users/records"
	messagesPath  = "/api/collections/chat_messages/records"
	reactionsPath = "/api/collections/chat_message_reactions/records"
)

// withMembers creates the host app's own auth collection "members" before
// pbchat is registered, as a host app with its own user model would.
func withMembers(app core.App) error {
	members := core.NewAuthCollection("members")
	members.Fields.Add(&core.TextField{Name: "name"})
	return app.Save(members)
}

// hostConfig is the example host app's configuration.
var hostConfig = chatmodule.Config{
	UsersCollection:  "members",
	Reactions:        chatmodule.ReactionRules{Mode: chatmodule.ReactionsLikeDislike},
	MaxMessageLength: 100,
}

func must(t *testing.T, res *chattest.Response, status int, what string) *chattest.Response {
	t.Helper()
	if res.Status != status {
		t.Fatalf("%s: status %d, want %d: %s", what, res.Status, status, res)
	}
	return res
}

// fieldError checks a 400 naming field in data.
func fieldError(t *testing.T, res *chattest.Response, field string) {
	t.Helper()
	if res.Status != http.StatusBadRequest {
		t.Fatalf("status %d, want 400 on %s: %s", res.Status, field, res)
	}
	data, _ := res.JSON()["data"].(map[string]any)
	if data[field] == nil {
		t.Fatalf("400 without a field error on %s: %s", field, res)
	}
}

func reactionsOf(env *chattest.Env, message string, user *chattest.User) []string {
	records, err := env.App.FindRecordsByFilter("chat_message_reactions", "message = {:m} && user = {:u}", "", 0, 0,
		dbx.Params{"m": message, "u": user.ID()})
	if err != nil {
		panic(err)
	}
	var out []string
	for _, r := range records {
		out = append(out, r.GetString("reaction"))
	}
	return out
}

// A host app with its own users collection, like/dislike reactions and
// short messages.
func TestHostApp(t *testing.T) {
	env := chattest.NewWithSetup(t, hostConfig, withMembers)
	ann, ben := env.NewUser("ann", "members"), env.NewUser("ben", "members")

	room := must(t, env.Do(ann, http.MethodPost, roomsPath, map[string]any{"type": "group", "name": "Host room"}), 200, "create room")
	roomID := room.Str("id")
	if room.Str("created_by") != ann.ID() {
		t.Fatalf("created_by = %q, want ann", room.Str("created_by"))
	}
	must(t, env.Do(ann, http.MethodPost, membersPath, map[string]any{"room": roomID, "user": ben.ID()}), 200, "add ben")

	// Messages: 100 characters fit, 101 do not.
	msg := must(t, env.Do(ben, http.MethodPost, messagesPath, map[string]any{"room": roomID, "text": strings.Repeat("b", 100)}), 200, "100-char message")
	msgID := msg.Str("id")
	if msg.Str("user") != ben.ID() {
		t.Fatalf("message user = %q, want ben", msg.Str("user"))
	}
	before := env.Count("chat_messages", "")
	fieldError(t, env.Do(ben, http.MethodPost, messagesPath, map[string]any{"room": roomID, "text": strings.Repeat("b", 101)}), "text")
	fieldError(t, env.Do(ben, http.MethodPatch, messagesPath+"/"+msgID, map[string]any{"text": strings.Repeat("b", 101)}), "text")
	if env.Count("chat_messages", "") != before {
		t.Fatalf("a refused message was stored")
	}

	// Reactions: like, then dislike replaces like.
	must(t, env.Do(ann, http.MethodPost, reactionsPath, map[string]any{"message": msgID, "reaction": "like"}), 200, "like")
	if got := reactionsOf(env, msgID, ann); !slices.Equal(got, []string{"like"}) {
		t.Fatalf("after like: %v", got)
	}
	must(t, env.Do(ann, http.MethodPost, reactionsPath, map[string]any{"message": msgID, "reaction": "dislike"}), 200, "dislike")
	if got := reactionsOf(env, msgID, ann); !slices.Equal(got, []string{"dislike"}) {
		t.Fatalf("after dislike: %v, want dislike alone", got)
	}
	// Ben's reaction is his own and does not touch ann's.
	must(t, env.Do(ben, http.MethodPost, reactionsPath, map[string]any{"message": msgID, "reaction": "like"}), 200, "ben likes")
	if got := reactionsOf(env, msgID, ann); !slices.Equal(got, []string{"dislike"}) {
		t.Fatalf("ann's reactions after ben's like: %v", got)
	}
	// The same reaction twice is the unique rule, not a replacement.
	fieldError(t, env.Do(ann, http.MethodPost, reactionsPath, map[string]any{"message": msgID, "reaction": "dislike"}), "reaction")
	// Emoji and other words are refused in like_dislike mode.
	for _, reaction := range []string{"👍", "Like", "love", ""} {
		fieldError(t, env.Do(ben, http.MethodPost, reactionsPath, map[string]any{"message": msgID, "reaction": reaction}), "reaction")
	}
	if n := env.Count("chat_message_reactions", ""); n != 2 {
		t.Fatalf("reactions = %d, want 2 (ann's dislike, ben's like)", n)
	}

	// Private rooms between members.
	private := must(t, env.Do(ann, http.MethodPost, "/api/chat/private", map[string]any{"user": ben.ID()}), 201, "private room")
	again := must(t, env.Do(ben, http.MethodPost, "/api/chat/private", map[string]any{"user": ann.ID()}), 200, "same private room")
	if private.Str("id") != again.Str("id") {
		t.Fatalf("two private rooms for one pair")
	}

	// An account of the app's other auth collection ("users") is no chat user.
	t.Run("users-collection account refused", func(t *testing.T) {
		outsider := env.NewUser("otto") // "users"
		rooms, messages, members := env.Count("chat_rooms", ""), env.Count("chat_messages", ""), env.Count("chat_room_users", "")
		for _, req := range []struct {
			method, path string
			body         any
		}{
			{http.MethodPost, roomsPath, map[string]any{"type": "group", "name": "nope"}},
			{http.MethodPost, messagesPath, map[string]any{"room": roomID, "text": "hi"}},
			{http.MethodPost, membersPath, map[string]any{"room": roomID, "user": outsider.ID()}},
			{http.MethodPost, reactionsPath, map[string]any{"message": msgID, "reaction": "like"}},
			{http.MethodPost, "/api/chat/private", map[string]any{"user": ann.ID()}},
			{http.MethodGet, roomsPath + "/" + roomID, nil},
			{http.MethodGet, messagesPath + "/" + msgID, nil},
		} {
			res := env.Do(outsider, req.method, req.path, req.body)
			if res.Status < 400 {
				t.Errorf("%s %s by a users-collection account = %d: %s", req.method, req.path, res.Status, res)
			}
		}
		for _, path := range []string{roomsPath, messagesPath, membersPath, reactionsPath} {
			if items := env.Do(outsider, http.MethodGet, path, nil).Items(); len(items) != 0 {
				t.Errorf("a users-collection account lists %d items of %s", len(items), path)
			}
		}
		// Nor can a member add them to a room.
		fieldError(t, env.Do(ann, http.MethodPost, membersPath, map[string]any{"room": roomID, "user": outsider.ID()}), "user")
		if env.Count("chat_rooms", "") != rooms || env.Count("chat_messages", "") != messages || env.Count("chat_room_users", "") != members {
			t.Errorf("a refused request by a users-collection account wrote rows")
		}
	})

	// The schema points at the host's collection.
	c, err := env.App.FindCollectionByNameOrId("chat_room_users")
	if err != nil {
		t.Fatal(err)
	}
	membersCollection, _ := env.App.FindCollectionByNameOrId("members")
	if rel, ok := c.Fields.GetByName("user").(*core.RelationField); !ok || rel.CollectionId != membersCollection.Id {
		t.Fatalf("chat_room_users.user does not point at members")
	}
}

// Two apps in one process with different configs keep their own rules.
func TestTwoAppsInOneProcess(t *testing.T) {
	host := chattest.NewWithSetup(t, hostConfig, withMembers)
	plain := chattest.New(t, chatmodule.Config{})

	type app struct {
		name           string
		env            *chattest.Env
		user, other    *chattest.User
		maxLength      int
		okReaction     string
		refusedReacion string
	}
	apps := []*app{
		{name: "host", env: host, maxLength: 100, okReaction: "like", refusedReacion: "👍"},
		{name: "plain", env: plain, maxLength: 4000, okReaction: "👍", refusedReacion: "like"},
	}
	host1, host2 := host.NewUser("ann", "members"), host.NewUser("ben", "members")
	apps[0].user, apps[0].other = host1, host2
	apps[1].user, apps[1].other = plain.NewUser("ann"), plain.NewUser("ben")

	// Interleave the two apps' requests.
	rooms := map[string]string{}
	for _, a := range apps {
		rooms[a.name] = must(t, a.env.Do(a.user, http.MethodPost, roomsPath, map[string]any{"type": "group"}), 200, a.name+" room").Str("id")
	}
	for _, a := range apps {
		must(t, a.env.Do(a.user, http.MethodPost, membersPath, map[string]any{"room": rooms[a.name], "user": a.other.ID()}), 200, a.name+" member")
	}
	for _, a := range apps {
		t.Run(a.name, func(t *testing.T) {
			env := a.env
			text, _ := env.App.FindCollectionByNameOrId("chat_messages")
			if max := text.Fields.GetByName("text").(*core.TextField).Max; max != a.maxLength {
				t.Errorf("chat_messages.text max = %d, want %d", max, a.maxLength)
			}
			fieldError(t, env.Do(a.user, http.MethodPost, messagesPath, map[string]any{"room": rooms[a.name], "text": strings.Repeat("x", a.maxLength+1)}), "text")
			msg := must(t, env.Do(a.user, http.MethodPost, messagesPath, map[string]any{"room": rooms[a.name], "text": strings.Repeat("x", a.maxLength)}), 200, "longest message").Str("id")
			if a.maxLength == 4000 {
				must(t, env.Do(a.user, http.MethodPost, messagesPath, map[string]any{"room": rooms[a.name], "text": strings.Repeat("x", 101)}), 200, "101 chars in the plain app")
			}
			must(t, env.Do(a.other, http.MethodPost, reactionsPath, map[string]any{"message": msg, "reaction": a.okReaction}), 200, "reaction")
			fieldError(t, env.Do(a.other, http.MethodPost, reactionsPath, map[string]any{"message": msg, "reaction": a.refusedReacion}), "reaction")
			// The other app's data is not here.
			if n := env.Count("chat_rooms", ""); n != 1 {
				t.Errorf("rooms = %d, want this app's one", n)
			}
		})
	}
	// Only the plain app's emoji mode keeps several reactions per user.
	msg := must(t, plain.Do(apps[1].user, http.MethodPost, messagesPath, map[string]any{"room": rooms["plain"], "text": "many"}), 200, "msg").Str("id")
	for _, emoji := range []string{"👍", "🎉"} {
		must(t, plain.Do(apps[1].other, http.MethodPost, reactionsPath, map[string]any{"message": msg, "reaction": emoji}), 200, "emoji")
	}
	if got := reactionsOf(plain, msg, apps[1].other); len(got) != 2 {
		t.Errorf("plain app reactions = %v, want both", got)
	}
}

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

// A zero Config is the spec's defaults.
func TestZeroConfigDefaults(t *testing.T) {
	env := chattest.New(t, chatmodule.Config{})
	app := env.App

	messages, _ := app.FindCollectionByNameOrId("chat_messages")
	if max := messages.Fields.GetByName("text").(*core.TextField).Max; max != 4000 {
		t.Errorf("text max = %d, want 4000", max)
	}
	media, _ := app.FindCollectionByNameOrId("chat_media")
	file := media.Fields.GetByName("file").(*core.FileField)
	if file.MaxSize != 20<<20 || !file.Protected || !file.Required ||
		!slices.Contains(file.Thumbs, "100x100") || !slices.Contains(file.Thumbs, "480x0") {
		t.Errorf("chat_media.file = %+v, want 20 MiB, protected, required, thumbs 100x100 and 480x0", file)
	}
	if !app.Settings().Batch.Enabled {
		t.Errorf("batch API disabled")
	}
	var schedule string
	for _, job := range app.Cron().Jobs() {
		if job.Id() == "pbchat_orphan_media" {
			schedule = job.Expression()
		}
	}
	if schedule != "*/10 * * * *" {
		t.Errorf("orphan media job schedule = %q", schedule)
	}
	users, _ := app.FindCollectionByNameOrId("users")
	members, _ := app.FindCollectionByNameOrId("chat_room_users")
	if members.Fields.GetByName("user").(*core.RelationField).CollectionId != users.Id {
		t.Errorf("chat users are not the users collection")
	}

	alice, bob := env.NewUser("alice"), env.NewUser("bob")
	for _, tc := range []struct {
		roomType          string
		creator, member   int // how many permissions
		memberPermissions []string
	}{
		{"group", 10, 4, []string{"can_add_users", "can_create_messages", "can_edit_own_messages", "can_delete_own_messages"}},
		{"channel", 10, 1, []string{"can_add_users"}},
	} {
		room := must(t, env.Do(alice, http.MethodPost, roomsPath, map[string]any{"type": tc.roomType}), 200, "room").Str("id")
		must(t, env.Do(alice, http.MethodPost, membersPath, map[string]any{"room": room, "user": bob.ID()}), 200, "member")
		perms := func(u *chattest.User) []string {
			m, err := app.FindFirstRecordByFilter("chat_room_users", "room = {:r} && user = {:u}", dbx.Params{"r": room, "u": u.ID()})
			if err != nil {
				t.Fatal(err)
			}
			return m.GetStringSlice("permissions")
		}
		if got := perms(alice); len(got) != tc.creator {
			t.Errorf("%s creator permissions = %v", tc.roomType, got)
		}
		got := perms(bob)
		slices.Sort(got)
		want := slices.Clone(tc.memberPermissions)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s member permissions = %v, want %v", tc.roomType, got, want)
		}
	}
	private := must(t, env.Do(alice, http.MethodPost, "/api/chat/private", map[string]any{"user": bob.ID()}), 201, "private").Str("id")
	for _, u := range []*chattest.User{alice, bob} {
		m, err := app.FindFirstRecordByFilter("chat_room_users", "room = {:r} && user = {:u}", dbx.Params{"r": private, "u": u.ID()})
		if err != nil {
			t.Fatal(err)
		}
		got := m.GetStringSlice("permissions")
		slices.Sort(got)
		if want := []string{"can_create_messages", "can_delete_own_messages", "can_delete_room", "can_edit_own_messages"}; !slices.Equal(got, want) {
			t.Errorf("private member permissions = %v, want %v", got, want)
		}
	}

	// Emoji reactions; 4000 characters; 10 attachments.
	group := must(t, env.Do(alice, http.MethodPost, roomsPath, map[string]any{"type": "group"}), 200, "group").Str("id")
	msg := must(t, env.Do(alice, http.MethodPost, messagesPath, map[string]any{"room": group, "text": strings.Repeat("x", 4000)}), 200, "4000 chars").Str("id")
	fieldError(t, env.Do(alice, http.MethodPost, messagesPath, map[string]any{"room": group, "text": strings.Repeat("x", 4001)}), "text")
	must(t, env.Do(alice, http.MethodPost, reactionsPath, map[string]any{"message": msg, "reaction": "👍"}), 200, "emoji")
	fieldError(t, env.Do(alice, http.MethodPost, reactionsPath, map[string]any{"message": msg, "reaction": "like"}), "reaction")
	var ids []string
	for i := 0; i < 11; i++ {
		res := must(t, env.Upload(alice, http.MethodPost, "/api/collections/chat_media/records", nil,
			chattest.File{Field: "file", Name: "f.txt", Content: []byte("file")}), 200, "upload")
		ids = append(ids, res.Str("id"))
	}
	fieldError(t, env.Do(alice, http.MethodPost, messagesPath, map[string]any{"room": group, "media": ids}), "media")
	must(t, env.Do(alice, http.MethodPost, messagesPath, map[string]any{"room": group, "media": ids[:10]}), 200, "10 attachments")

	// Orphan media is kept for 24 hours.
	orphan := ids[10]
	backdate := func(age time.Duration) {
		_, err := app.DB().Update("chat_media", dbx.Params{"created": types.NowDateTime().Add(-age).String()}, dbx.HashExp{"id": orphan}).Execute()
		if err != nil {
			t.Fatal(err)
		}
	}
	runJob := func() {
		for _, job := range app.Cron().Jobs() {
			if job.Id() == "pbchat_orphan_media" {
				job.Run()
			}
		}
	}
	backdate(23 * time.Hour)
	runJob()
	if env.Count("chat_media", "id = {:id}", dbx.Params{"id": orphan}) != 1 {
		t.Fatalf("a 23h old orphan was removed")
	}
	backdate(25 * time.Hour)
	runJob()
	if env.Count("chat_media", "id = {:id}", dbx.Params{"id": orphan}) != 0 {
		t.Fatalf("a 25h old orphan was kept")
	}
	if n := env.Count("chat_media", ""); n != 10 {
		t.Fatalf("attached media = %d, want 10", n)
	}
}

// Register refuses a Config that cannot work.
func TestRegisterInvalidConfig(t *testing.T) {
	for _, tc := range []struct {
		name   string
		config chatmodule.Config
		want   string
	}{
		{"unknown room type in RoomDefaults", chatmodule.Config{RoomDefaults: map[string]chatmodule.RoomDefaults{"forum": {}}}, "forum"},
		{"unknown permission in RoomDefaults", chatmodule.Config{RoomDefaults: map[string]chatmodule.RoomDefaults{"group": {Member: chatmodule.Permissions{"can_fly"}}}}, "can_fly"},
		{"unknown reaction mode", chatmodule.Config{Reactions: chatmodule.ReactionRules{Mode: "stars"}}, "stars"},
		{"negative message length", chatmodule.Config{MaxMessageLength: -1}, "negative"},
		{"missing users collection", chatmodule.Config{UsersCollection: "nobody"}, "nobody"},
		{"users collection that is not an auth collection", chatmodule.Config{UsersCollection: "chat_rooms_base"}, "chat_rooms_base"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app := newBareApp(t)
			base := core.NewBaseCollection("chat_rooms_base")
			if err := app.Save(base); err != nil {
				t.Fatal(err)
			}
			err := chatmodule.Register(app, tc.config)
			if err == nil {
				t.Fatalf("Register accepted %+v", tc.config)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name %q", err, tc.want)
			}
			if _, err := app.FindCollectionByNameOrId("chat_rooms"); err == nil {
				t.Errorf("a refused Register left chat collections behind")
			}
			defer func() {
				if recover() == nil {
					t.Errorf("MustRegister did not panic")
				}
			}()
			chatmodule.MustRegister(newBareApp(t), tc.config)
		})
	}
}
