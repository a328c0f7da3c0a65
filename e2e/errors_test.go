package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/pocketbase/dbx"

	"github.com/pbchat/pbchat/chatmodule"
	"github.com/pbchat/pbchat/internal/chattest"
)

// SPEC "Errors": a missing permission is a 403 naming it, a non-member sees
// nothing (404 / absent), invalid input is a 400 naming the field, and a
// refused request leaves no row or file behind.

// rigCase is one refused request.
type rigCase struct {
	name         string
	actor        *chattest.User
	method, path string
	body         any
	status       int    // 403, 404 or 400
	permission   string // named by a 403
	field        string // named by a 400
}

// refuse runs each case and checks its answer and that nothing was written.
func (r *rig) refuse(t *testing.T, cases []rigCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := r.snapshot()
			res := r.Do(tc.actor, tc.method, tc.path, tc.body)
			switch {
			case tc.status == http.StatusForbidden:
				rigExpectForbidden(t, res, tc.permission)
			case tc.status == http.StatusBadRequest && tc.field != "":
				rigExpectField(t, res, tc.field)
			default:
				if res.Status != tc.status {
					t.Fatalf("status %d, want %d: %s", res.Status, tc.status, res)
				}
			}
			sub := &rig{Env: r.Env, t: t}
			sub.expectSnapshot(before)
		})
	}
}

const (
	rigRooms     = "/api/collections/chat_rooms/records"
	rigMembers   = "/api/collections/chat_room_users/records"
	rigMessages  = "/api/collections/chat_messages/records"
	rigMedia     = "/api/collections/chat_media/records"
	rigLinks     = "/api/collections/chat_message_media/records"
	rigReactions = "/api/collections/chat_message_reactions/records"
)

// rigWorld is a populated app: a group, a channel, a private room, messages
// with an attachment and reactions.
type rigWorld struct {
	*rig
	alice, bob, carol, dave, eve *chattest.User // dave is in no room
	group, channel, private      string
	aliceMsg, bobMsg, eveMsg     string            // aliceMsg (group) has aliceMedia attached
	aliceMedia, aliceReaction    string            // aliceReaction is on bobMsg
	link                         string            // the chat_message_media row of aliceMsg
	members                      map[string]string // "room/user" → membership id
}

func newRigWorld(t *testing.T, config chatmodule.Config) *rigWorld {
	r := newRig(t, config)
	w := &rigWorld{rig: r, members: map[string]string{}}
	w.alice, w.bob, w.carol, w.dave, w.eve = r.NewUser("alice"), r.NewUser("bob"), r.NewUser("carol"), r.NewUser("dave"), r.NewUser("eve")

	// group: alice creator, bob and carol with the group defaults.
	w.group = r.createRoom(w.alice, "group", "Group")
	w.members["group/alice"] = r.membership(w.group, w.alice).Id
	w.members["group/bob"] = r.addMember(w.alice, w.group, w.bob, nil)
	w.members["group/carol"] = r.addMember(w.alice, w.group, w.carol, nil)
	// channel: alice creator, carol reads, eve posts but may not edit or delete.
	w.channel = r.createRoom(w.alice, "channel", "Channel")
	w.members["channel/carol"] = r.addMember(w.alice, w.channel, w.carol, []string{})
	w.members["channel/eve"] = r.addMember(w.alice, w.channel, w.eve, []string{"can_create_messages"})
	// private: alice and bob.
	res := r.Do(w.alice, http.MethodPost, "/api/chat/private", map[string]any{"user": w.bob.ID()})
	r.expect(res, http.StatusCreated, "private room")
	w.private = res.Str("id")
	w.members["private/alice"] = r.membership(w.private, w.alice).Id

	w.aliceMedia = r.upload(w.alice)
	w.aliceMsg = r.post(w.alice, w.group, "hello", w.aliceMedia)
	w.link = rigFirstID(t, r, "chat_message_media", "message = {:m}", dbx.Params{"m": w.aliceMsg})
	w.bobMsg = r.post(w.bob, w.group, "hi alice")
	w.eveMsg = r.post(w.eve, w.channel, "news")
	w.aliceReaction = r.react(w.alice, w.bobMsg, "👍")
	return w
}

func rigFirstID(t testing.TB, r *rig, collection, filter string, params dbx.Params) string {
	t.Helper()
	record, err := r.App.FindFirstRecordByFilter(collection, filter, params)
	if err != nil {
		t.Fatalf("find %s where %s: %v", collection, filter, err)
	}
	return record.Id
}

func TestErrorsMissingPermission(t *testing.T) {
	w := newRigWorld(t, chatmodule.Config{})
	patch, del, post := http.MethodPatch, http.MethodDelete, http.MethodPost
	w.refuse(t, []rigCase{
		{name: "reader posts", actor: w.carol, method: post, path: rigMessages,
			body: map[string]any{"room": w.channel, "text": "hi"}, status: 403, permission: "can_create_messages"},
		{name: "reader adds a member", actor: w.carol, method: post, path: rigMembers,
			body: map[string]any{"room": w.channel, "user": w.dave.ID()}, status: 403, permission: "can_add_users"},
		{name: "member grants a permission they lack", actor: w.bob, method: post, path: rigMembers,
			body: map[string]any{"room": w.group, "user": w.dave.ID(), "permissions": []string{"can_edit_room"}}, status: 403, permission: "can_edit_room"},
		{name: "member removes another member", actor: w.bob, method: del, path: rigMembers + "/" + w.members["group/carol"],
			status: 403, permission: "can_remove_users"},
		{name: "member demotes the creator", actor: w.bob, method: patch, path: rigMembers + "/" + w.members["group/alice"],
			body: map[string]any{"permissions": []string{}}, status: 403, permission: "can_remove_users"},
		{name: "reader changes another member's permissions", actor: w.carol, method: patch, path: rigMembers + "/" + w.members["channel/eve"],
			body: map[string]any{"permissions": []string{}}, status: 403, permission: "can_add_users"},
		{name: "reader gives themselves a permission", actor: w.carol, method: patch, path: rigMembers + "/" + w.members["channel/carol"],
			body: map[string]any{"permissions": []string{"can_create_messages"}}, status: 403, permission: "can_create_messages"},
		{name: "member edits the room", actor: w.bob, method: patch, path: rigRooms + "/" + w.group,
			body: map[string]any{"name": "Mine now"}, status: 403, permission: "can_edit_room"},
		{name: "member deletes the room", actor: w.bob, method: del, path: rigRooms + "/" + w.group,
			status: 403, permission: "can_delete_room"},
		{name: "member edits another's message", actor: w.bob, method: patch, path: rigMessages + "/" + w.aliceMsg,
			body: map[string]any{"text": "edited"}, status: 403, permission: "can_edit_messages"},
		{name: "member deletes another's message", actor: w.bob, method: del, path: rigMessages + "/" + w.aliceMsg,
			status: 403, permission: "can_delete_messages"},
		{name: "poster without can_edit_own_messages edits own", actor: w.eve, method: patch, path: rigMessages + "/" + w.eveMsg,
			body: map[string]any{"text": "edited"}, status: 403, permission: "can_edit_own_messages"},
		{name: "poster without can_delete_own_messages deletes own", actor: w.eve, method: del, path: rigMessages + "/" + w.eveMsg,
			status: 403, permission: "can_delete_own_messages"},
		{name: "member deletes another's reaction", actor: w.bob, method: del, path: rigReactions + "/" + w.aliceReaction,
			status: 403, permission: "can_delete_messages"},
		{name: "member leaves a private room", actor: w.alice, method: del, path: rigMembers + "/" + w.members["private/alice"],
			status: 403, permission: "can_delete_room"},
	})

	// The same actions succeed for who holds the permission (the refusals
	// above are about permissions, not broken routes).
	w.expect(w.Do(w.alice, patch, rigMessages+"/"+w.bobMsg, map[string]any{"text": "moderated"}), 200, "can_edit_messages edits")
	w.expect(w.Do(w.alice, del, rigReactions+"/"+w.aliceReaction, nil), 204, "own reaction deleted")
	w.expect(w.Do(w.alice, del, rigMembers+"/"+w.members["group/carol"], nil), 204, "can_remove_users removes")
}

func TestErrorsNonMember(t *testing.T) {
	w := newRigWorld(t, chatmodule.Config{})
	get, patch, del, post := http.MethodGet, http.MethodPatch, http.MethodDelete, http.MethodPost
	var cases []rigCase
	for _, actor := range []struct {
		name string
		user *chattest.User
	}{{"non-member", w.dave}, {"anonymous", nil}} {
		for _, c := range []rigCase{
			{name: "view room", method: get, path: rigRooms + "/" + w.group},
			{name: "update room", method: patch, path: rigRooms + "/" + w.group, body: map[string]any{"name": "x"}},
			{name: "delete room", method: del, path: rigRooms + "/" + w.group},
			{name: "view private room", method: get, path: rigRooms + "/" + w.private},
			{name: "view membership", method: get, path: rigMembers + "/" + w.members["group/bob"]},
			{name: "update membership", method: patch, path: rigMembers + "/" + w.members["group/bob"], body: map[string]any{"muted": true}},
			{name: "delete membership", method: del, path: rigMembers + "/" + w.members["group/bob"]},
			{name: "view message", method: get, path: rigMessages + "/" + w.aliceMsg},
			{name: "update message", method: patch, path: rigMessages + "/" + w.aliceMsg, body: map[string]any{"text": "x"}},
			{name: "delete message", method: del, path: rigMessages + "/" + w.aliceMsg},
			{name: "view attachment link", method: get, path: rigLinks + "/" + w.link},
			{name: "view attached media", method: get, path: rigMedia + "/" + w.aliceMedia},
			{name: "view reaction", method: get, path: rigReactions + "/" + w.aliceReaction},
			{name: "delete reaction", method: del, path: rigReactions + "/" + w.aliceReaction},
		} {
			c.name = actor.name + " " + c.name
			c.actor = actor.user
			c.status = http.StatusNotFound
			cases = append(cases, c)
		}
	}
	// Creates into a room one cannot see: 404 too (the room "does not exist").
	for _, c := range []rigCase{
		{name: "post a message", path: rigMessages, body: map[string]any{"room": w.group, "text": "hi"}},
		{name: "join a non-public room", path: rigMembers, body: map[string]any{"room": w.group, "user": w.dave.ID()}},
		{name: "react", path: rigReactions, body: map[string]any{"message": w.aliceMsg, "reaction": "👍"}},
	} {
		c.name = "non-member " + c.name
		c.actor, c.method, c.status = w.dave, post, http.StatusNotFound
		cases = append(cases, c)
	}
	w.refuse(t, cases)

	t.Run("absent from lists", func(t *testing.T) {
		for _, list := range []struct{ path, filter string }{
			{rigRooms, ""},
			{rigRooms, fmt.Sprintf("id=%q", w.group)},
			{rigMembers, fmt.Sprintf("room=%q", w.group)},
			{rigMessages, fmt.Sprintf("room=%q", w.group)},
			{rigMessages, ""},
			{rigLinks, ""},
			{rigMedia, ""},
			{rigReactions, ""},
		} {
			path := list.path
			if list.filter != "" {
				path += "?filter=" + url.QueryEscape(list.filter)
			}
			res := w.Do(w.dave, http.MethodGet, path, nil)
			w.expect(res, http.StatusOK, "list "+path)
			if items := res.Items(); len(items) != 0 {
				t.Errorf("non-member lists %s: %d items, want none: %s", path, len(items), res)
			}
			// A member sees what the non-member does not (the list is not empty for everybody).
			if list.path != rigRooms || list.filter != "" {
				if res := w.Do(w.alice, http.MethodGet, path, nil); len(res.Items()) == 0 {
					t.Errorf("member lists %s: empty", path)
				}
			}
		}
		// The private room is absent from the other users' room lists.
		res := w.Do(w.carol, http.MethodGet, rigRooms, nil)
		for _, item := range res.Items() {
			if item["id"] == w.private {
				t.Errorf("carol lists alice and bob's private room")
			}
		}
	})

	t.Run("file refused with own token", func(t *testing.T) {
		media, err := w.App.FindRecordById("chat_media", w.aliceMedia)
		if err != nil {
			t.Fatal(err)
		}
		path := "/api/files/chat_media/" + w.aliceMedia + "/" + media.GetString("file") + "?token="
		if res := w.Do(nil, http.MethodGet, path+w.fileToken(w.dave), nil); res.Status != http.StatusNotFound {
			t.Fatalf("non-member download = %d, want 404", res.Status)
		}
		w.expect(w.Do(nil, http.MethodGet, path+w.fileToken(w.carol), nil), http.StatusOK, "member download")
	})
}

func TestErrorsInvalidInput(t *testing.T) {
	w := newRigWorld(t, chatmodule.Config{})
	post, patch := http.MethodPost, http.MethodPatch

	var elevenMedia []string
	for i := 0; i < 11; i++ {
		elevenMedia = append(elevenMedia, w.upload(w.alice))
	}
	bobMedia := w.upload(w.bob)

	cases := []rigCase{
		// Rooms.
		{name: "unknown room type", actor: w.alice, method: post, path: rigRooms, body: map[string]any{"type": "forum", "name": "x"}, field: "type"},
		{name: "missing room type", actor: w.alice, method: post, path: rigRooms, body: map[string]any{"name": "x"}, field: "type"},
		{name: "private room through the records API", actor: w.alice, method: post, path: rigRooms, body: map[string]any{"type": "private_messages"}, field: "type"},
		{name: "name of 256 characters", actor: w.alice, method: post, path: rigRooms, body: map[string]any{"type": "group", "name": strings.Repeat("n", 256)}, field: "name"},
		{name: "description of 2001 characters", actor: w.alice, method: post, path: rigRooms, body: map[string]any{"type": "group", "description": strings.Repeat("d", 2001)}, field: "description"},
		{name: "rename to 256 characters", actor: w.alice, method: patch, path: rigRooms + "/" + w.group, body: map[string]any{"name": strings.Repeat("n", 256)}, field: "name"},
		// Messages.
		{name: "text of 4001 characters", actor: w.alice, method: post, path: rigMessages, body: map[string]any{"room": w.group, "text": strings.Repeat("x", 4001)}, field: "text"},
		{name: "text of 4001 multibyte characters", actor: w.alice, method: post, path: rigMessages, body: map[string]any{"room": w.group, "text": strings.Repeat("é", 4001)}, field: "text"},
		{name: "edit to 4001 characters", actor: w.alice, method: patch, path: rigMessages + "/" + w.aliceMsg, body: map[string]any{"text": strings.Repeat("x", 4001)}, field: "text"},
		{name: "empty message", actor: w.alice, method: post, path: rigMessages, body: map[string]any{"room": w.group, "text": ""}, field: "text"},
		{name: "blank message", actor: w.alice, method: post, path: rigMessages, body: map[string]any{"room": w.group, "text": "  \n\t "}, field: "text"},
		{name: "message without text key", actor: w.alice, method: post, path: rigMessages, body: map[string]any{"room": w.group}, field: "text"},
		{name: "empty media list and no text", actor: w.alice, method: post, path: rigMessages, body: map[string]any{"room": w.group, "media": []string{}}, field: "text"},
		{name: "edit text away", actor: w.bob, method: patch, path: rigMessages + "/" + w.bobMsg, body: map[string]any{"text": ""}, field: "text"},
		{name: "message in no room", actor: w.alice, method: post, path: rigMessages, body: map[string]any{"text": "hi"}, field: "room"},
		{name: "message with an empty room", actor: w.alice, method: post, path: rigMessages, body: map[string]any{"room": "", "text": "hi"}, field: "room"},
		{name: "message in no room by a user in no room", actor: w.dave, method: post, path: rigMessages, body: map[string]any{"text": "hi"}, field: "room"},
		// Text without a visible character counts as empty.
		{name: "zero-width space only", actor: w.alice, method: post, path: rigMessages, body: map[string]any{"room": w.group, "text": "\u200b"}, field: "text"},
		{name: "zero-width joiners, word joiner and BOM only", actor: w.alice, method: post, path: rigMessages, body: map[string]any{"room": w.group, "text": "\u200c\u200d\u2060\ufeff"}, field: "text"},
		{name: "NUL only", actor: w.alice, method: post, path: rigMessages, body: map[string]any{"room": w.group, "text": "\x00"}, field: "text"},
		{name: "control characters and spaces only", actor: w.alice, method: post, path: rigMessages, body: map[string]any{"room": w.group, "text": " \x01\x1b\u007f\u200b "}, field: "text"},
		{name: "edit to a zero-width space", actor: w.bob, method: patch, path: rigMessages + "/" + w.bobMsg, body: map[string]any{"text": "\u200b"}, field: "text"},
		{name: "edit to NUL", actor: w.bob, method: patch, path: rigMessages + "/" + w.bobMsg, body: map[string]any{"text": "\x00"}, field: "text"},
		// Attachments.
		{name: "foreign media", actor: w.alice, method: post, path: rigMessages, body: map[string]any{"room": w.group, "text": "look", "media": []string{bobMedia}}, field: "media"},
		{name: "own and foreign media", actor: w.alice, method: post, path: rigMessages, body: map[string]any{"room": w.group, "text": "look", "media": []string{elevenMedia[0], bobMedia}}, field: "media"},
		{name: "unknown media", actor: w.alice, method: post, path: rigMessages, body: map[string]any{"room": w.group, "media": []string{"nosuchmedia0000"}}, field: "media"},
		{name: "same media twice", actor: w.alice, method: post, path: rigMessages, body: map[string]any{"room": w.group, "media": []string{elevenMedia[0], elevenMedia[0]}}, field: "media"},
		{name: "media not a list of ids", actor: w.alice, method: post, path: rigMessages, body: map[string]any{"room": w.group, "media": []any{1, 2}}, field: "media"},
		{name: "11 attachments", actor: w.alice, method: post, path: rigMessages, body: map[string]any{"room": w.group, "text": "album", "media": elevenMedia}, field: "media"},
		{name: "attachment link through the records API", actor: w.alice, method: post, path: rigLinks, body: map[string]any{"message": w.bobMsg, "media": elevenMedia[0], "sequence": 1}, status: 403},
		// Reactions (emoji mode, the default).
		{name: "reaction: a word", actor: w.bob, method: post, path: rigReactions, body: map[string]any{"message": w.aliceMsg, "reaction": "like"}, field: "reaction"},
		{name: "reaction: a letter", actor: w.bob, method: post, path: rigReactions, body: map[string]any{"message": w.aliceMsg, "reaction": "a"}, field: "reaction"},
		{name: "reaction: two emoji", actor: w.bob, method: post, path: rigReactions, body: map[string]any{"message": w.aliceMsg, "reaction": "👍👍"}, field: "reaction"},
		{name: "reaction: emoji and text", actor: w.bob, method: post, path: rigReactions, body: map[string]any{"message": w.aliceMsg, "reaction": "👍 ok"}, field: "reaction"},
		{name: "reaction: empty", actor: w.bob, method: post, path: rigReactions, body: map[string]any{"message": w.aliceMsg, "reaction": ""}, field: "reaction"},
		{name: "duplicate reaction", actor: w.alice, method: post, path: rigReactions, body: map[string]any{"message": w.bobMsg, "reaction": "👍"}, field: "reaction"},
		// Memberships.
		{name: "duplicate membership", actor: w.alice, method: post, path: rigMembers, body: map[string]any{"room": w.group, "user": w.bob.ID()}, field: "user"},
		{name: "creator adds themselves again", actor: w.alice, method: post, path: rigMembers, body: map[string]any{"room": w.group, "user": w.alice.ID()}, field: "user"},
		{name: "unknown permission", actor: w.alice, method: post, path: rigMembers, body: map[string]any{"room": w.group, "user": w.dave.ID(), "permissions": []string{"can_fly"}}, field: "permissions"},
		{name: "unknown user", actor: w.alice, method: post, path: rigMembers, body: map[string]any{"room": w.group, "user": "nosuchuser0000a"}, field: "user"},
		{name: "set unknown permission", actor: w.alice, method: patch, path: rigMembers + "/" + w.members["group/bob"], body: map[string]any{"permissions": []string{"can_fly"}}, field: "permissions"},
		// Private rooms.
		{name: "private room with nobody", actor: w.alice, method: post, path: "/api/chat/private", body: map[string]any{}, field: "user"},
		{name: "private room with oneself", actor: w.alice, method: post, path: "/api/chat/private", body: map[string]any{"user": w.alice.ID()}, field: "user"},
		{name: "private room with an unknown user", actor: w.alice, method: post, path: "/api/chat/private", body: map[string]any{"user": "nosuchuser0000a"}, field: "user"},
	}
	for i := range cases {
		if cases[i].status == 0 {
			cases[i].status = http.StatusBadRequest
		}
	}
	w.refuse(t, cases)

	// Right at the limits it works.
	t.Run("limits are inclusive", func(t *testing.T) {
		r := &rig{Env: w.Env, t: t}
		r.post(w.alice, w.group, strings.Repeat("x", 4000))
		r.post(w.alice, w.group, strings.Repeat("é", 4000))
		r.post(w.alice, w.group, "", elevenMedia[:10]...)
		r.post(w.alice, w.group, "\u200b", r.upload(w.alice)) // invisible text with an attachment: the attachment is the message
		r.post(w.alice, w.group, "\u200bok\u200d")            // visible text among invisibles
		r.expect(r.Do(w.alice, patch, rigMessages+"/"+w.aliceMsg, map[string]any{"text": "\u200b"}), http.StatusOK, "edit to invisible text of a message with an attachment")
		res := r.Do(w.alice, post, rigRooms, map[string]any{"type": "group", "name": strings.Repeat("n", 255), "description": strings.Repeat("d", 2000)})
		r.expect(res, http.StatusOK, "room at the limits")
		for _, reaction := range []string{"👍🏽", "👨‍👩‍👧", "🇫🇷", "1️⃣", "❤️"} {
			r.react(w.bob, w.aliceMsg, reaction)
		}
	})
}

func TestErrorsThirdMemberOfPrivateRoom(t *testing.T) {
	t.Run("member holding can_add_users", func(t *testing.T) {
		// With can_add_users in the private defaults a member gets past the
		// permission check and meets the invariant: 400 on user.
		all := chatmodule.Permissions{"can_add_users", "can_create_messages", "can_edit_own_messages", "can_delete_own_messages", "can_delete_room"}
		w := newRigWorld(t, chatmodule.Config{RoomDefaults: map[string]chatmodule.RoomDefaults{
			"private_messages": {Creator: all, Member: all},
		}})
		w.refuse(t, []rigCase{{name: "third member", actor: w.alice, method: http.MethodPost, path: rigMembers,
			body: map[string]any{"room": w.private, "user": w.carol.ID()}, status: 400, field: "user"}})
	})
	t.Run("default permissions", func(t *testing.T) {
		// Without can_add_users (the spec's private defaults) the permission
		// check answers first.
		w := newRigWorld(t, chatmodule.Config{})
		w.refuse(t, []rigCase{{name: "third member", actor: w.alice, method: http.MethodPost, path: rigMembers,
			body: map[string]any{"room": w.private, "user": w.carol.ID()}, status: 403, permission: "can_add_users"}})
		admin := w.Superuser()
		w.refuse(t, []rigCase{
			{name: "third member via superuser", actor: admin, method: http.MethodPost, path: rigMembers,
				body: map[string]any{"room": w.private, "user": w.carol.ID()}, status: 400, field: "user"},
			{name: "third member via superuser batch", actor: admin, method: http.MethodPost, path: "/api/batch",
				body: rigBatch(rigOp("chat_room_users", map[string]any{"room": w.private, "user": w.carol.ID()})), status: 400},
		})
	})
}

func TestErrorsMediaTooLarge(t *testing.T) {
	r := newRig(t, chatmodule.Config{MaxMediaSize: 1024})
	alice := r.NewUser("alice")
	r.upload(alice) // a small PNG fits
	picture := chattest.PNG(320, 200)
	if len(picture) <= 1024 {
		t.Fatalf("test picture is only %d bytes", len(picture))
	}
	for _, tc := range []struct {
		name  string
		files []chattest.File
	}{
		{"file over MaxMediaSize", []chattest.File{{Field: "file", Name: "big.bin", Content: make([]byte, 2048)}}},
		{"picture over MaxMediaSize", []chattest.File{{Field: "file", Name: "big.png", Content: picture}}},
		{"no file", nil},
		{"empty (0-byte) file", []chattest.File{{Field: "file", Name: "empty.png", Content: []byte{}}}},
		{"empty (0-byte) text file", []chattest.File{{Field: "file", Name: "empty.txt", Content: nil}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &rig{Env: r.Env, t: t}
			before := r.snapshot()
			res := r.Upload(alice, http.MethodPost, rigMedia, nil, tc.files...)
			rigExpectField(t, res, "file")
			r.expectSnapshot(before)
		})
	}
	t.Run("anonymous upload", func(t *testing.T) {
		r := &rig{Env: r.Env, t: t}
		before := r.snapshot()
		res := r.Upload(nil, http.MethodPost, rigMedia, nil, chattest.File{Field: "file", Name: "a.txt", Content: []byte("a")})
		if res.Status != http.StatusBadRequest && res.Status != http.StatusUnauthorized && res.Status != http.StatusForbidden {
			t.Fatalf("anonymous upload = %d: %s", res.Status, res)
		}
		r.expectSnapshot(before)
	})
}

// GET /api/chat/rooms pages: a page past the end is empty with the real
// totals (never page 1 again, however large the number); a page or perPage
// that is not an integer of at least 1 is a 400 naming it.
func TestErrorsRoomsPage(t *testing.T) {
	w := newRigWorld(t, chatmodule.Config{})
	// bob is in the group and the private room.
	for _, tc := range []struct {
		query            string
		page, perPage    float64
		items, totalPage int
	}{
		{"", 1, 30, 2, 1},
		{"page=2&perPage=1", 2, 1, 1, 2},
		{"page=3&perPage=1", 3, 1, 0, 2},
		{"page=2", 2, 30, 0, 1},
		{"page=9223372036854775807", 9223372036854775807, 30, 0, 1},
		{"page=9223372036854775807&perPage=200", 9223372036854775807, 200, 0, 1},
		{"page=4611686018427387904&perPage=2", 4611686018427387904, 2, 0, 1}, // (page-1)*perPage overflows
		{"page=99999999999999999999999", 9223372036854775807, 30, 0, 1},      // beyond int64: past any end
		{"perPage=9223372036854775807", 1, 200, 2, 1},                        // capped, as PocketBase caps perPage
		{"perPage=99999999999999999999999", 1, 200, 2, 1},
	} {
		t.Run(tc.query, func(t *testing.T) {
			res := w.Do(w.bob, http.MethodGet, "/api/chat/rooms?"+tc.query, nil)
			w.expect(res, http.StatusOK, "rooms?"+tc.query)
			body := res.JSON()
			if body["page"] != tc.page || body["perPage"] != tc.perPage || body["totalItems"] != float64(2) || body["totalPages"] != float64(tc.totalPage) {
				t.Errorf("page=%v perPage=%v totalItems=%v totalPages=%v, want %v %v 2 %d", body["page"], body["perPage"], body["totalItems"], body["totalPages"], tc.page, tc.perPage, tc.totalPage)
			}
			if items, ok := body["items"].([]any); !ok || len(items) != tc.items {
				t.Errorf("items = %v, want %d items", body["items"], tc.items)
			}
		})
	}
	for _, tc := range []struct{ query, field string }{
		{"page=0", "page"},
		{"page=-1", "page"},
		{"page=-9223372036854775808", "page"},
		{"page=-99999999999999999999999", "page"},
		{"page=abc", "page"},
		{"page=1.5", "page"},
		{"perPage=0", "perPage"},
		{"perPage=-5", "perPage"},
		{"perPage=-9223372036854775808", "perPage"},
		{"perPage=ten", "perPage"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			rigExpectField(t, w.Do(w.bob, http.MethodGet, "/api/chat/rooms?"+tc.query, nil), tc.field)
		})
	}
}
