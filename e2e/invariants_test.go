package e2e

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pocketbase/dbx"
	validation "github.com/pocketbase/ozzo-validation/v4"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/types"

	"github.com/pbchat/pbchat/chatmodule"
	"github.com/pbchat/pbchat/internal/chattest"
)

// SPEC "Invariants hold however a record is written": each invariant is
// checked through the dashboard (superuser HTTP requests, which bypass
// permissions but not invariants) and through Go code (env.App.Save/Delete).

// rigInvariant is one write that breaks an invariant, in both paths.
type rigInvariant struct {
	name string
	// setup runs before the snapshot (writes the invariant's context) and
	// returns what dashboard and goWrite need, if anything.
	setup func(t *testing.T, w *rigWorld) string
	// dashboard is the superuser's request; it must answer 400 naming field.
	dashboard func(w *rigWorld, admin *chattest.User, arg string) *chattest.Response
	// goWrite is the same write in Go; it must fail.
	goWrite func(w *rigWorld, arg string) error
	field   string
}

// in is the same world reporting to t (a subtest).
func (w *rigWorld) in(t *testing.T) *rigWorld {
	sub := *w
	sub.rig = &rig{Env: w.Env, t: t}
	return &sub
}

func (w *rigWorld) record(collection, id string) *core.Record {
	w.t.Helper()
	record, err := w.App.FindRecordById(collection, id)
	if err != nil {
		w.t.Fatalf("find %s %s: %v", collection, id, err)
	}
	return record
}

func (w *rigWorld) newRecord(collection string, fields map[string]any) *core.Record {
	w.t.Helper()
	c, err := w.App.FindCollectionByNameOrId(collection)
	if err != nil {
		w.t.Fatal(err)
	}
	record := core.NewRecord(c)
	for k, v := range fields {
		record.Set(k, v)
	}
	return record
}

// saveNew saves a new record through Go.
func (w *rigWorld) saveNew(collection string, fields map[string]any) error {
	return w.App.Save(w.newRecord(collection, fields))
}

// saveChange loads a record, sets fields and saves it through Go.
func (w *rigWorld) saveChange(collection, id string, fields map[string]any) error {
	record := w.record(collection, id)
	for k, v := range fields {
		record.Set(k, v)
	}
	return w.App.Save(record)
}

// textlessPicture posts, as alice in the group, a message that is only n pictures.
func (w *rigWorld) textlessPicture(n int) string {
	w.t.Helper()
	var media []string
	for i := 0; i < n; i++ {
		media = append(media, w.upload(w.alice))
	}
	return w.post(w.alice, w.group, "", media...)
}

func (w *rigWorld) linksOf(message string) []*core.Record {
	w.t.Helper()
	links, err := w.App.FindRecordsByFilter("chat_message_media", "message = {:m}", "sequence", 0, 0, dbx.Params{"m": message})
	if err != nil {
		w.t.Fatal(err)
	}
	return links
}

func TestInvariants(t *testing.T) {
	post, patch, del := http.MethodPost, http.MethodPatch, http.MethodDelete
	none := func(*testing.T, *rigWorld) string { return "" }

	cases := []rigInvariant{
		// A private_messages room has at most two members ...
		{
			name:  "third member of a private room",
			setup: none,
			dashboard: func(w *rigWorld, admin *chattest.User, _ string) *chattest.Response {
				return w.Do(admin, post, rigMembers, map[string]any{"room": w.private, "user": w.carol.ID()})
			},
			goWrite: func(w *rigWorld, _ string) error {
				return w.saveNew("chat_room_users", map[string]any{"room": w.private, "user": w.carol.ID()})
			},
			field: "user",
		},
		// ... and at most one exists per pair of users.
		{
			name: "second private room of a pair",
			setup: func(t *testing.T, w *rigWorld) string {
				room := w.newRecord("chat_rooms", map[string]any{"type": "private_messages"})
				if err := w.App.Save(room); err != nil {
					t.Fatal(err)
				}
				if err := w.saveNew("chat_room_users", map[string]any{"room": room.Id, "user": w.alice.ID()}); err != nil {
					t.Fatal(err)
				}
				return room.Id
			},
			dashboard: func(w *rigWorld, admin *chattest.User, room string) *chattest.Response {
				return w.Do(admin, post, rigMembers, map[string]any{"room": room, "user": w.bob.ID()})
			},
			goWrite: func(w *rigWorld, room string) error {
				return w.saveNew("chat_room_users", map[string]any{"room": room, "user": w.bob.ID()})
			},
			field: "user",
		},
		// One membership per (room, user).
		{
			name:  "duplicate membership",
			setup: none,
			dashboard: func(w *rigWorld, admin *chattest.User, _ string) *chattest.Response {
				return w.Do(admin, post, rigMembers, map[string]any{"room": w.group, "user": w.bob.ID()})
			},
			goWrite: func(w *rigWorld, _ string) error {
				return w.saveNew("chat_room_users", map[string]any{"room": w.group, "user": w.bob.ID()})
			},
			field: "user",
		},
		// One reaction per (message, user, reaction).
		{
			name:  "duplicate reaction",
			setup: none,
			dashboard: func(w *rigWorld, admin *chattest.User, _ string) *chattest.Response {
				return w.Do(admin, post, rigReactions, map[string]any{"message": w.bobMsg, "user": w.alice.ID(), "reaction": "👍"})
			},
			goWrite: func(w *rigWorld, _ string) error {
				return w.saveNew("chat_message_reactions", map[string]any{"message": w.bobMsg, "user": w.alice.ID(), "reaction": "👍"})
			},
			field: "reaction",
		},
		{
			name:  "reaction outside the configured rules",
			setup: none,
			dashboard: func(w *rigWorld, admin *chattest.User, _ string) *chattest.Response {
				return w.Do(admin, post, rigReactions, map[string]any{"message": w.bobMsg, "user": w.alice.ID(), "reaction": "like"})
			},
			goWrite: func(w *rigWorld, _ string) error {
				return w.saveNew("chat_message_reactions", map[string]any{"message": w.bobMsg, "user": w.alice.ID(), "reaction": "like"})
			},
			field: "reaction",
		},
		// A message has non-empty text or at least one attachment.
		{
			name:  "message without text or attachment",
			setup: none,
			dashboard: func(w *rigWorld, admin *chattest.User, _ string) *chattest.Response {
				return w.Do(admin, post, rigMessages, map[string]any{"room": w.group, "user": w.alice.ID(), "text": " "})
			},
			goWrite: func(w *rigWorld, _ string) error {
				return w.saveNew("chat_messages", map[string]any{"room": w.group, "user": w.alice.ID(), "text": ""})
			},
			field: "text",
		},
		{
			name:  "text removed from a message without attachment",
			setup: none,
			dashboard: func(w *rigWorld, admin *chattest.User, _ string) *chattest.Response {
				return w.Do(admin, patch, rigMessages+"/"+w.bobMsg, map[string]any{"text": ""})
			},
			goWrite: func(w *rigWorld, _ string) error {
				return w.saveChange("chat_messages", w.bobMsg, map[string]any{"text": ""})
			},
			field: "text",
		},
		{
			name:  "text over the limit",
			setup: none,
			dashboard: func(w *rigWorld, admin *chattest.User, _ string) *chattest.Response {
				return w.Do(admin, post, rigMessages, map[string]any{"room": w.group, "user": w.alice.ID(), "text": strings.Repeat("x", 4001)})
			},
			goWrite: func(w *rigWorld, _ string) error {
				return w.saveChange("chat_messages", w.bobMsg, map[string]any{"text": strings.Repeat("x", 4001)})
			},
			field: "text",
		},
		{
			name: "last attachment link of a text-less message removed",
			setup: func(t *testing.T, w *rigWorld) string {
				return w.linksOf(w.textlessPicture(1))[0].Id
			},
			dashboard: func(w *rigWorld, admin *chattest.User, link string) *chattest.Response {
				return w.Do(admin, del, rigLinks+"/"+link, nil)
			},
			goWrite: func(w *rigWorld, link string) error {
				return w.App.Delete(w.record("chat_message_media", link))
			},
			field: "message",
		},
		{
			name: "the only picture of a text-less message deleted",
			setup: func(t *testing.T, w *rigWorld) string {
				return w.linksOf(w.textlessPicture(1))[0].GetString("media")
			},
			dashboard: func(w *rigWorld, admin *chattest.User, media string) *chattest.Response {
				return w.Do(admin, del, rigMedia+"/"+media, nil)
			},
			goWrite: func(w *rigWorld, media string) error {
				return w.App.Delete(w.record("chat_media", media))
			},
			field: "", // the refusal comes from the cascaded link: no field of chat_media to name
		},
		// A message's attachments are media uploaded by the message's author.
		{
			name:  "message with someone else's upload",
			setup: func(t *testing.T, w *rigWorld) string { return w.upload(w.bob) },
			dashboard: func(w *rigWorld, admin *chattest.User, bobMedia string) *chattest.Response {
				return w.Do(admin, post, rigMessages, map[string]any{"room": w.group, "user": w.alice.ID(), "text": "x", "media": []string{bobMedia}})
			},
			goWrite: func(w *rigWorld, bobMedia string) error {
				return w.saveNew("chat_messages", map[string]any{"room": w.group, "user": w.alice.ID(), "text": "x", "media": []string{bobMedia}})
			},
			field: "media",
		},
		{
			name:  "link to someone else's upload",
			setup: func(t *testing.T, w *rigWorld) string { return w.upload(w.bob) },
			dashboard: func(w *rigWorld, admin *chattest.User, bobMedia string) *chattest.Response {
				return w.Do(admin, post, rigLinks, map[string]any{"message": w.aliceMsg, "media": bobMedia, "sequence": 7})
			},
			goWrite: func(w *rigWorld, bobMedia string) error {
				return w.saveNew("chat_message_media", map[string]any{"message": w.aliceMsg, "media": bobMedia, "sequence": 7})
			},
			field: "media",
		},
		{
			name:  "link moved to someone else's upload",
			setup: func(t *testing.T, w *rigWorld) string { return w.upload(w.bob) },
			dashboard: func(w *rigWorld, admin *chattest.User, bobMedia string) *chattest.Response {
				return w.Do(admin, patch, rigLinks+"/"+w.link, map[string]any{"media": bobMedia})
			},
			goWrite: func(w *rigWorld, bobMedia string) error {
				return w.saveChange("chat_message_media", w.link, map[string]any{"media": bobMedia})
			},
			field: "media",
		},
		{
			name:  "link moved to another message",
			setup: none,
			dashboard: func(w *rigWorld, admin *chattest.User, _ string) *chattest.Response {
				return w.Do(admin, patch, rigLinks+"/"+w.link, map[string]any{"message": w.bobMsg})
			},
			goWrite: func(w *rigWorld, _ string) error {
				return w.saveChange("chat_message_media", w.link, map[string]any{"message": w.bobMsg})
			},
			field: "message",
		},
		{
			name:  "media handed to another uploader",
			setup: none,
			dashboard: func(w *rigWorld, admin *chattest.User, _ string) *chattest.Response {
				return w.Do(admin, patch, rigMedia+"/"+w.aliceMedia, map[string]any{"uploaded_by": w.bob.ID()})
			},
			goWrite: func(w *rigWorld, _ string) error {
				return w.saveChange("chat_media", w.aliceMedia, map[string]any{"uploaded_by": w.bob.ID()})
			},
			field: "uploaded_by",
		},
	}
	// type, a message's room and user, a membership's room and user never change.
	for _, im := range []struct {
		collection, path, field string
		id                      func(w *rigWorld) string
		value                   func(w *rigWorld) any
	}{
		{"chat_rooms", rigRooms, "type", func(w *rigWorld) string { return w.group }, func(*rigWorld) any { return "channel" }},
		{"chat_rooms", rigRooms, "created_by", func(w *rigWorld) string { return w.group }, func(w *rigWorld) any { return w.bob.ID() }},
		{"chat_messages", rigMessages, "room", func(w *rigWorld) string { return w.aliceMsg }, func(w *rigWorld) any { return w.channel }},
		{"chat_messages", rigMessages, "user", func(w *rigWorld) string { return w.aliceMsg }, func(w *rigWorld) any { return w.bob.ID() }},
		{"chat_room_users", rigMembers, "room", func(w *rigWorld) string { return w.members["group/bob"] }, func(w *rigWorld) any { return w.channel }},
		{"chat_room_users", rigMembers, "user", func(w *rigWorld) string { return w.members["group/bob"] }, func(w *rigWorld) any { return w.dave.ID() }},
		{"chat_message_reactions", rigReactions, "message", func(w *rigWorld) string { return w.aliceReaction }, func(w *rigWorld) any { return w.aliceMsg }},
		{"chat_message_reactions", rigReactions, "user", func(w *rigWorld) string { return w.aliceReaction }, func(w *rigWorld) any { return w.bob.ID() }},
	} {
		cases = append(cases, rigInvariant{
			name:  fmt.Sprintf("%s.%s changed", im.collection, im.field),
			setup: none,
			dashboard: func(w *rigWorld, admin *chattest.User, _ string) *chattest.Response {
				return w.Do(admin, patch, im.path+"/"+im.id(w), map[string]any{im.field: im.value(w)})
			},
			goWrite: func(w *rigWorld, _ string) error {
				return w.saveChange(im.collection, im.id(w), map[string]any{im.field: im.value(w)})
			},
			field: im.field,
		})
	}

	// One world for all cases: every case's write is refused (checked by the
	// snapshots), and setups only add records no other case looks at.
	w := newRigWorld(t, chatmodule.Config{})
	admin := w.Superuser()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := w.in(t)
			arg := tc.setup(t, w)

			t.Run("dashboard", func(t *testing.T) {
				r := &rig{Env: w.Env, t: t}
				before := r.snapshot()
				res := tc.dashboard(w, admin, arg)
				if tc.field != "" {
					rigExpectField(t, res, tc.field)
				} else if res.Status != http.StatusBadRequest {
					t.Fatalf("status %d, want 400: %s", res.Status, res)
				}
				r.expectSnapshot(before)
			})
			t.Run("go", func(t *testing.T) {
				r := &rig{Env: w.Env, t: t}
				before := r.snapshot()
				err := tc.goWrite(w, arg)
				if err == nil {
					t.Fatalf("Go write succeeded, want the invariant to refuse it")
				}
				var fields validation.Errors
				if tc.field != "" && (!errors.As(err, &fields) || fields[tc.field] == nil) {
					t.Fatalf("Go write refused with %q, want a field error on %s", err, tc.field)
				}
				r.expectSnapshot(before)
			})
		})
	}
}

// Immutable fields are refused to users too, even with every permission.
func TestInvariantsImmutableForUsers(t *testing.T) {
	w := newRigWorld(t, chatmodule.Config{})
	patch := http.MethodPatch
	w.refuse(t, []rigCase{
		{name: "room type", actor: w.alice, method: patch, path: rigRooms + "/" + w.group, body: map[string]any{"type": "channel"}, status: 400, field: "type"},
		{name: "room created_by", actor: w.alice, method: patch, path: rigRooms + "/" + w.group, body: map[string]any{"created_by": w.bob.ID()}, status: 400, field: "created_by"},
		{name: "message room", actor: w.alice, method: patch, path: rigMessages + "/" + w.aliceMsg, body: map[string]any{"room": w.channel}, status: 400, field: "room"},
		{name: "message user", actor: w.alice, method: patch, path: rigMessages + "/" + w.aliceMsg, body: map[string]any{"user": w.bob.ID()}, status: 400, field: "user"},
		{name: "membership room", actor: w.alice, method: patch, path: rigMembers + "/" + w.members["group/bob"], body: map[string]any{"room": w.channel}, status: 400, field: "room"},
		{name: "membership user", actor: w.alice, method: patch, path: rigMembers + "/" + w.members["group/bob"], body: map[string]any{"user": w.dave.ID()}, status: 400, field: "user"},
		{name: "own membership moved to another room", actor: w.bob, method: patch, path: rigMembers + "/" + w.members["group/bob"], body: map[string]any{"room": w.channel}, status: 400, field: "room"},
	})
}

// Server-set fields: a user's value is ignored on create and the module's
// value stands; edited_at moves only when text changes.
func TestInvariantsServerSetFields(t *testing.T) {
	w := newRigWorld(t, chatmodule.Config{})
	post, patch := http.MethodPost, http.MethodPatch

	room := w.Do(w.alice, post, rigRooms, map[string]any{"type": "group", "name": "Mine", "created_by": w.bob.ID()})
	w.expect(room, 200, "create room")
	if room.Str("created_by") != w.alice.ID() {
		t.Errorf("room created_by = %q, want the creator", room.Str("created_by"))
	}
	roomID := room.Str("id")
	if n := w.Count("chat_room_users", "room = {:r}", dbx.Params{"r": roomID}); n != 1 || w.membership(roomID, w.alice) == nil {
		t.Errorf("room members = %d, want only the creator", n)
	}

	member := w.Do(w.alice, post, rigMembers, map[string]any{"room": roomID, "user": w.carol.ID(), "created_by": w.bob.ID()})
	w.expect(member, 200, "add member")
	if member.Str("created_by") != w.alice.ID() {
		t.Errorf("membership created_by = %q, want the adder", member.Str("created_by"))
	}

	stale := "2020-01-02 03:04:05.000Z"
	msg := w.Do(w.alice, post, rigMessages, map[string]any{"room": roomID, "text": "first", "user": w.bob.ID(), "edited_at": stale})
	w.expect(msg, 200, "post")
	if msg.Str("user") != w.alice.ID() {
		t.Errorf("message user = %q, want the poster", msg.Str("user"))
	}
	if msg.Str("edited_at") != "" {
		t.Errorf("new message edited_at = %q, want empty", msg.Str("edited_at"))
	}
	msgID := msg.Str("id")

	media := w.Upload(w.alice, post, rigMedia, map[string]string{"uploaded_by": w.bob.ID()},
		chattest.File{Field: "file", Name: "a.png", Content: chattest.PNG(4, 4)})
	w.expect(media, 200, "upload")
	if media.Str("uploaded_by") != w.alice.ID() {
		t.Errorf("uploaded_by = %q, want the uploader", media.Str("uploaded_by"))
	}

	reaction := w.Do(w.carol, post, rigReactions, map[string]any{"message": msgID, "reaction": "👍", "user": w.bob.ID()})
	w.expect(reaction, 200, "react")
	if reaction.Str("user") != w.carol.ID() {
		t.Errorf("reaction user = %q, want the reacting user", reaction.Str("user"))
	}

	// edited_at: not on a change that keeps the text, not from the client.
	res := w.Do(w.alice, patch, rigMessages+"/"+msgID, map[string]any{"text": "first", "edited_at": stale})
	w.expect(res, 200, "patch without text change")
	if res.Str("edited_at") != "" {
		t.Errorf("edited_at = %q after a patch that kept the text, want empty", res.Str("edited_at"))
	}
	startEdit := time.Now().Add(-time.Second)
	res = w.Do(w.alice, patch, rigMessages+"/"+msgID, map[string]any{"text": "second", "edited_at": stale})
	w.expect(res, 200, "edit text")
	editedAt, err := types.ParseDateTime(res.Str("edited_at"))
	if err != nil || editedAt.Time().Before(startEdit) || editedAt.Time().After(time.Now().Add(time.Second)) {
		t.Fatalf("edited_at = %q after a text edit, want now", res.Str("edited_at"))
	}
	res = w.Do(w.alice, patch, rigMessages+"/"+msgID, map[string]any{"text": "second", "edited_at": stale})
	w.expect(res, 200, "patch keeping the edited text")
	if res.Str("edited_at") != editedAt.String() {
		t.Errorf("edited_at = %q after a patch that kept the text, want %q", res.Str("edited_at"), editedAt.String())
	}

	// The same through Go: edited_at follows text, whatever the caller sets.
	record := w.record("chat_messages", msgID)
	record.Set("edited_at", stale)
	if err := w.App.Save(record); err != nil {
		t.Fatal(err)
	}
	if got := w.record("chat_messages", msgID).GetString("edited_at"); got != editedAt.String() {
		t.Errorf("Go save without text change: edited_at = %q, want %q", got, editedAt.String())
	}
	record = w.record("chat_messages", msgID)
	record.Set("text", "third")
	if err := w.App.Save(record); err != nil {
		t.Fatal(err)
	}
	if got := w.record("chat_messages", msgID).GetDateTime("edited_at"); !got.After(editedAt) {
		t.Errorf("Go text change: edited_at = %v, want later than %v", got, editedAt)
	}
	created := w.newRecord("chat_messages", map[string]any{"room": roomID, "user": w.alice.ID(), "text": "go", "edited_at": stale})
	if err := w.App.Save(created); err != nil {
		t.Fatal(err)
	}
	if got := w.record("chat_messages", created.Id).GetString("edited_at"); got != "" {
		t.Errorf("Go create: edited_at = %q, want empty", got)
	}

	// Superusers write on behalf of users: the dashboard's created_by stands.
	admin := w.Superuser()
	res = w.Do(admin, post, rigRooms, map[string]any{"type": "group", "name": "By admin", "created_by": w.bob.ID()})
	w.expect(res, 200, "superuser creates a room for bob")
	if res.Str("created_by") != w.bob.ID() || w.membership(res.Str("id"), w.bob) == nil {
		t.Errorf("superuser room for bob: created_by %q", res.Str("created_by"))
	}
}

// Go code attaches media with record.Set("media", ids) before Save.
func TestInvariantsGoAttachments(t *testing.T) {
	w := newRigWorld(t, chatmodule.Config{})
	a, b := w.upload(w.alice), w.upload(w.alice)
	msg := w.newRecord("chat_messages", map[string]any{"room": w.group, "user": w.alice.ID(), "media": []string{a, b}})
	if err := w.App.Save(msg); err != nil {
		t.Fatalf("Go message with own media: %v", err)
	}
	links := w.linksOf(msg.Id)
	if len(links) != 2 || links[0].GetString("media") != a || links[1].GetString("media") != b ||
		links[0].GetInt("sequence") != 0 || links[1].GetInt("sequence") != 1 {
		t.Fatalf("links = %v", links)
	}
	// Removing one of two attachments is fine; the last one stays.
	if err := w.App.Delete(links[0]); err != nil {
		t.Fatalf("remove one of two attachments: %v", err)
	}
	if err := w.App.Delete(links[1]); err == nil {
		t.Fatalf("removed the last attachment of a text-less message")
	}
	// Too many attachments through Go too.
	var eleven []string
	for i := 0; i < 11; i++ {
		eleven = append(eleven, w.upload(w.alice))
	}
	before := w.snapshot()
	if err := w.saveNew("chat_messages", map[string]any{"room": w.group, "user": w.alice.ID(), "text": "x", "media": eleven}); err == nil {
		t.Fatalf("Go message with 11 attachments saved")
	}
	w.expectSnapshot(before)
}

// Deleting a room removes its memberships, messages, attachment links and
// reactions, whoever deletes it.
func TestInvariantsRoomDeleteCascades(t *testing.T) {
	for _, how := range []string{"member with can_delete_room", "superuser", "go"} {
		t.Run(how, func(t *testing.T) {
			w := newRigWorld(t, chatmodule.Config{})
			picture := w.textlessPicture(2) // a message that is only pictures
			w.react(w.bob, picture, "🎉")
			w.react(w.carol, w.aliceMsg, "❤️")
			messages := []string{w.aliceMsg, w.bobMsg, picture}
			media := []string{w.aliceMedia}
			for _, l := range w.linksOf(picture) {
				media = append(media, l.GetString("media"))
			}
			channelBefore := map[string]int{
				"chat_room_users": w.Count("chat_room_users", "room = {:r}", dbx.Params{"r": w.channel}),
				"chat_messages":   w.Count("chat_messages", "room = {:r}", dbx.Params{"r": w.channel}),
			}

			switch how {
			case "member with can_delete_room":
				w.expect(w.Do(w.alice, http.MethodDelete, rigRooms+"/"+w.group, nil), http.StatusNoContent, "delete room")
			case "superuser":
				w.expect(w.Do(w.Superuser(), http.MethodDelete, rigRooms+"/"+w.group, nil), http.StatusNoContent, "delete room")
			case "go":
				if err := w.App.Delete(w.record("chat_rooms", w.group)); err != nil {
					t.Fatalf("delete room: %v", err)
				}
			}

			params := dbx.Params{"r": w.group}
			for collection, filter := range map[string]string{
				"chat_rooms":             "id = {:r}",
				"chat_room_users":        "room = {:r}",
				"chat_messages":          "room = {:r}",
				"chat_message_media":     "message.room = {:r}",
				"chat_message_reactions": "message.room = {:r}",
			} {
				if n := w.Count(collection, filter, params); n != 0 {
					t.Errorf("%s: %d rows of the deleted room left", collection, n)
				}
			}
			for _, id := range messages {
				for _, c := range []string{"chat_message_media", "chat_message_reactions"} {
					if n := w.Count(c, "message = {:m}", dbx.Params{"m": id}); n != 0 {
						t.Errorf("%s: %d rows of deleted message %s left", c, n, id)
					}
				}
			}
			// The uploads stay (they are the orphan clean-up's), other rooms too.
			for _, id := range media {
				w.record("chat_media", id)
			}
			for c, n := range channelBefore {
				if got := w.Count(c, "room = {:r}", dbx.Params{"r": w.channel}); got != n {
					t.Errorf("%s of another room: %d, want %d", c, got, n)
				}
			}
		})
	}
}

// Deleting a user (cascade on the users relation) removes their memberships,
// messages, uploads and reactions and leaves the rooms they created; it works
// even when one of their messages is only a picture.
func TestInvariantsUserDeleteCascades(t *testing.T) {
	for _, how := range []string{"superuser", "go"} {
		t.Run(how, func(t *testing.T) {
			w := newRigWorld(t, chatmodule.Config{})
			picture := w.textlessPicture(1)
			w.react(w.bob, picture, "🎉")
			switch how {
			case "superuser":
				w.expect(w.Do(w.Superuser(), http.MethodDelete, "/api/collections/users/records/"+w.alice.ID(), nil), http.StatusNoContent, "delete user")
			case "go":
				if err := w.App.Delete(w.alice.Record); err != nil {
					t.Fatalf("delete user: %v", err)
				}
			}
			params := dbx.Params{"u": w.alice.ID()}
			for collection, filter := range map[string]string{
				"chat_room_users":        "user = {:u}",
				"chat_messages":          "user = {:u}",
				"chat_media":             "uploaded_by = {:u}",
				"chat_message_reactions": "user = {:u}",
			} {
				if n := w.Count(collection, filter, params); n != 0 {
					t.Errorf("%s: %d rows of the deleted user left", collection, n)
				}
			}
			if n := w.Count("chat_message_reactions", "message = {:m}", dbx.Params{"m": picture}); n != 0 {
				t.Errorf("reactions to the deleted user's message left")
			}
			// Rooms stay, with the other members.
			group := w.record("chat_rooms", w.group)
			if group.GetString("created_by") != "" {
				t.Errorf("created_by of the deleted creator = %q, want unset", group.GetString("created_by"))
			}
			if n := w.Count("chat_room_users", "room = {:r}", dbx.Params{"r": w.group}); n != 2 {
				t.Errorf("group members left = %d, want 2", n)
			}
		})
	}
}

// The orphan media job removes uploads no message uses once they are older
// than OrphanMediaTTL, with their files, and keeps attached and recent ones.
func TestInvariantsOrphanMediaCleanup(t *testing.T) {
	for _, tc := range []struct {
		ttl        time.Duration
		keepRecent bool // a fresh orphan is younger than ttl
	}{
		{time.Millisecond, false},
		{time.Hour, true},
	} {
		t.Run(tc.ttl.String(), func(t *testing.T) {
			w := newRigWorld(t, chatmodule.Config{OrphanMediaTTL: tc.ttl})
			old := types.NowDateTime().Add(-2 * time.Hour)
			backdate := func(id string) {
				t.Helper()
				_, err := w.App.DB().Update("chat_media", dbx.Params{"created": old.String()}, dbx.HashExp{"id": id}).Execute()
				if err != nil {
					t.Fatal(err)
				}
			}
			oldOrphan := w.upload(w.alice)
			backdate(oldOrphan)
			backdate(w.aliceMedia) // attached
			oldAttachedOnly := w.textlessPicture(1)
			oldAttachedMedia := w.linksOf(oldAttachedOnly)[0].GetString("media")
			backdate(oldAttachedMedia)
			recentOrphan := w.upload(w.bob)
			time.Sleep(5 * time.Millisecond)

			// A thumb of the old orphan exists and must go with it.
			orphan := w.record("chat_media", oldOrphan)
			w.expect(w.Do(nil, http.MethodGet, "/api/files/chat_media/"+oldOrphan+"/"+orphan.GetString("file")+"?thumb=100x100&token="+w.fileToken(w.alice), nil), 200, "thumb")
			orphanDir := orphan.BaseFilesPath()
			if !slices.ContainsFunc(w.storageFiles(), func(f string) bool { return rigHasPrefix(f, orphanDir) }) {
				t.Fatalf("no stored file of the orphan under %s", orphanDir)
			}

			var job func()
			for _, j := range w.App.Cron().Jobs() {
				if j.Id() == "pbchat_orphan_media" {
					job = j.Run
				}
			}
			if job == nil {
				t.Fatal(`no "pbchat_orphan_media" cron job`)
			}
			job()

			if n := w.Count("chat_media", "id = {:id}", dbx.Params{"id": oldOrphan}); n != 0 {
				t.Errorf("old orphan media kept")
			}
			// PocketBase deletes a record's files in the background after the commit.
			orphanFiles := func() []string {
				var left []string
				for _, f := range w.storageFiles() {
					if rigHasPrefix(f, orphanDir) {
						left = append(left, f)
					}
				}
				return left
			}
			deadline := time.Now().Add(5 * time.Second)
			for len(orphanFiles()) > 0 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if left := orphanFiles(); len(left) > 0 {
				t.Errorf("files of the deleted orphan left: %v", left)
			}
			for _, id := range []string{w.aliceMedia, oldAttachedMedia} {
				if n := w.Count("chat_media", "id = {:id}", dbx.Params{"id": id}); n != 1 {
					t.Errorf("attached media %s removed", id)
				}
				m := w.record("chat_media", id)
				if !slices.ContainsFunc(w.storageFiles(), func(f string) bool { return rigHasPrefix(f, m.BaseFilesPath()) }) {
					t.Errorf("file of attached media %s removed", id)
				}
			}
			if got := w.Count("chat_media", "id = {:id}", dbx.Params{"id": recentOrphan}) == 1; got != tc.keepRecent {
				t.Errorf("recent orphan kept = %v, want %v", got, tc.keepRecent)
			}
			// Messages and links are untouched.
			if len(w.linksOf(oldAttachedOnly)) != 1 || len(w.linksOf(w.aliceMsg)) != 1 {
				t.Errorf("attachment links changed by the clean-up")
			}
		})
	}
}

func rigHasPrefix(path, dir string) bool {
	return len(path) > len(dir) && path[:len(dir)] == dir && path[len(dir)] == '/'
}
