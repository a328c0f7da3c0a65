// Package e2e drives pbchat the way a client does: real HTTP requests against
// a PocketBase app with pbchat registered (internal/chattest), plus Go code
// writing through env.App where the spec says invariants hold for every writer.
package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"io/fs"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"github.com/pbchat/pbchat/chatmodule"
	"github.com/pbchat/pbchat/internal/chattest"
)

// The three flows of SPEC "Flows that must work as the seed describes them".

// Flow (a): send a picture to a room, read it back, download it and its thumb.
func TestFlowSendPicture(t *testing.T) {
	r := newRig(t, chatmodule.Config{})
	alice, bob, carol := r.NewUser("alice"), r.NewUser("bob"), r.NewUser("carol")
	room := r.createRoom(alice, "group", "Pictures")
	r.addMember(alice, room, bob, nil)

	// 1. Upload a real PNG.
	picture := chattest.PNG(320, 200)
	upload := r.Upload(alice, http.MethodPost, "/api/collections/chat_media/records", nil,
		chattest.File{Field: "file", Name: "holiday.png", Content: picture})
	r.expect(upload, http.StatusOK, "upload picture")
	mediaID, fileName := upload.Str("id"), upload.Str("file")
	if mediaID == "" || fileName == "" {
		t.Fatalf("upload answer lacks id/file: %s", upload)
	}
	if got := upload.Str("uploaded_by"); got != alice.ID() {
		t.Fatalf("uploaded_by = %q, want the uploader %q", got, alice.ID())
	}

	// 2. Post the message with the media.
	msg := r.Do(alice, http.MethodPost, "/api/collections/chat_messages/records",
		map[string]any{"room": room, "text": "Look at this", "media": []string{mediaID}})
	r.expect(msg, http.StatusOK, "post message with media")
	messageID := msg.Str("id")
	if n := r.Count("chat_message_media", "message = {:m} && media = {:media} && sequence = 0",
		dbx.Params{"m": messageID, "media": mediaID}); n != 1 {
		t.Fatalf("chat_message_media rows for the message = %d, want 1", n)
	}

	// 3. Read it back, with attachments expanded, as the other member.
	read := r.Do(bob, http.MethodGet, "/api/collections/chat_messages/records/"+messageID+
		"?expand="+url.QueryEscape("chat_message_media_via_message.media"), nil)
	r.expect(read, http.StatusOK, "read message with expand")
	links := rigList(rigMap(read.JSON()["expand"])["chat_message_media_via_message"])
	if len(links) != 1 {
		t.Fatalf("expanded attachments = %d, want 1: %s", len(links), read)
	}
	media := rigMap(rigMap(links[0]["expand"])["media"])
	if media["id"] != mediaID || media["file"] != fileName {
		t.Fatalf("expanded media = %v, want id %s file %s", media, mediaID, fileName)
	}
	// The list answers the same way.
	list := r.Do(bob, http.MethodGet, "/api/collections/chat_messages/records?filter="+
		url.QueryEscape(fmt.Sprintf("room=%q && system = ''", room))+"&expand="+url.QueryEscape("chat_message_media_via_message.media"), nil)
	r.expect(list, http.StatusOK, "list messages with expand")
	if items := list.Items(); len(items) != 1 || len(rigList(rigMap(items[0]["expand"])["chat_message_media_via_message"])) != 1 {
		t.Fatalf("list with expand = %s", list)
	}

	// 4. The file is protected: no token, no file.
	fileURL := "/api/files/chat_media/" + mediaID + "/" + fileName
	if res := r.Do(nil, http.MethodGet, fileURL, nil); res.Status != http.StatusNotFound {
		t.Fatalf("download without token = %d, want 404", res.Status)
	}

	// 5. A member downloads it and its thumbs with a file token.
	bobToken := r.fileToken(bob)
	original := r.Do(nil, http.MethodGet, fileURL+"?token="+bobToken, nil)
	r.expect(original, http.StatusOK, "download original")
	if !bytes.Equal(original.Body, picture) {
		t.Fatalf("downloaded %d bytes, differ from the %d uploaded", len(original.Body), len(picture))
	}
	for _, thumb := range []struct {
		size string
		w, h int
	}{{"100x100", 100, 100}, {"480x0", 480, 300}} {
		res := r.Do(nil, http.MethodGet, fileURL+"?thumb="+thumb.size+"&token="+bobToken, nil)
		r.expect(res, http.StatusOK, "download thumb "+thumb.size)
		img, err := png.Decode(bytes.NewReader(res.Body))
		if err != nil {
			t.Fatalf("thumb %s is not a PNG: %v", thumb.size, err)
		}
		if b := img.Bounds(); b.Dx() != thumb.w || b.Dy() != thumb.h {
			t.Fatalf("thumb %s is %dx%d, want %dx%d", thumb.size, b.Dx(), b.Dy(), thumb.w, thumb.h)
		}
	}
	// The uploader downloads it too.
	r.expect(r.Do(nil, http.MethodGet, fileURL+"?token="+r.fileToken(alice), nil), http.StatusOK, "uploader downloads")

	// 6. A non-member with a valid token of their own gets nothing.
	carolToken := r.fileToken(carol)
	for _, q := range []string{"", "?thumb=100x100"} {
		sep := "?"
		if q != "" {
			sep = "&"
		}
		res := r.Do(nil, http.MethodGet, fileURL+q+sep+"token="+carolToken, nil)
		if res.Status != http.StatusNotFound {
			t.Fatalf("non-member download %q = %d, want 404", q, res.Status)
		}
	}
	// Nor the media record, nor the message.
	if res := r.Do(carol, http.MethodGet, "/api/collections/chat_media/records/"+mediaID, nil); res.Status != http.StatusNotFound {
		t.Fatalf("non-member views media = %d, want 404", res.Status)
	}
	if res := r.Do(carol, http.MethodGet, "/api/collections/chat_messages/records/"+messageID, nil); res.Status != http.StatusNotFound {
		t.Fatalf("non-member views message = %d, want 404", res.Status)
	}
}

// Flow (b): a chat of three people, as separate requests and as one batch.
func TestFlowGroupOfThree(t *testing.T) {
	r := newRig(t, chatmodule.Config{})
	alice, bob, carol := r.NewUser("alice"), r.NewUser("bob"), r.NewUser("carol")

	// check asserts what the flow leaves behind, however it was sent.
	check := func(t *testing.T, room string) {
		t.Helper()
		if n := r.Count("chat_room_users", "room = {:r}", dbx.Params{"r": room}); n != 3 {
			t.Fatalf("members = %d, want 3", n)
		}
		for _, u := range []*chattest.User{bob, carol} {
			m := r.membership(room, u)
			got := m.GetStringSlice("permissions")
			want := []string{"can_add_users", "can_create_messages", "can_edit_own_messages", "can_delete_own_messages"}
			if !rigSameSet(got, want) {
				t.Fatalf("%s's permissions = %v, want the group member default %v", u.Record.GetString("email"), got, want)
			}
			if m.GetString("created_by") != alice.ID() {
				t.Fatalf("membership created_by = %q, want alice", m.GetString("created_by"))
			}
		}
		if got := r.membership(room, alice).GetStringSlice("permissions"); len(got) != 10 {
			t.Fatalf("creator's permissions = %v, want all ten", got)
		}
		// Both others see the room and the message.
		for _, u := range []*chattest.User{bob, carol} {
			res := r.Do(u, http.MethodGet, "/api/collections/chat_messages/records?filter="+url.QueryEscape(fmt.Sprintf("room=%q && system = ''", room)), nil)
			r.expect(res, http.StatusOK, "list messages")
			items := res.Items()
			if len(items) != 1 || items[0]["text"] != "Alice created a chat" || items[0]["user"] != alice.ID() {
				t.Fatalf("messages seen by a member = %s", res)
			}
			r.expect(r.Do(u, http.MethodGet, "/api/collections/chat_rooms/records/"+room, nil), http.StatusOK, "member views room")
		}
	}

	t.Run("separate requests", func(t *testing.T) {
		room := r.createRoom(alice, "group", "Weekend trip")
		r.addMember(alice, room, bob, nil)
		r.addMember(alice, room, carol, nil)
		r.post(alice, room, "Alice created a chat")
		check(t, room)
	})

	t.Run("one batch", func(t *testing.T) {
		const room = "grp3batch000001" // 15 chars [a-z0-9]: client-chosen so the batch can refer to it
		res := r.Do(alice, http.MethodPost, "/api/batch", rigBatch(
			rigOp("chat_rooms", map[string]any{"id": room, "type": "group", "name": "Batch trip"}),
			rigOp("chat_room_users", map[string]any{"room": room, "user": bob.ID()}),
			rigOp("chat_room_users", map[string]any{"room": room, "user": carol.ID()}),
			rigOp("chat_messages", map[string]any{"room": room, "text": "Alice created a chat"}),
		))
		r.expect(res, http.StatusOK, "batch")
		var results []map[string]any
		rigDecode(t, res.Body, &results)
		if len(results) != 4 {
			t.Fatalf("batch results = %d, want 4: %s", len(results), res)
		}
		for i, result := range results {
			if result["status"] != float64(http.StatusOK) {
				t.Fatalf("batch result %d = %v", i, result)
			}
		}
		if got := rigMap(results[0]["body"])["created_by"]; got != alice.ID() {
			t.Fatalf("batch room created_by = %v", got)
		}
		check(t, room)
	})

	t.Run("batch with a refused operation writes nothing", func(t *testing.T) {
		// Carol reads a channel without posting rights.
		channel := r.createRoom(alice, "channel", "News")
		r.addMember(alice, channel, carol, []string{})
		before := r.snapshot()

		cases := []struct {
			name    string
			actor   *chattest.User
			room    string
			third   map[string]any
			status  int // of the refused operation
			field   string
			missing string // permission named in the refusal
		}{
			{"invalid: empty message", alice, "grp3refused0001", rigOp("chat_messages", map[string]any{"room": "grp3refused0001", "text": ""}), 400, "text", ""},
			{"invalid: unknown permission", alice, "grp3refused0002", rigOp("chat_room_users", map[string]any{"room": "grp3refused0002", "user": carol.ID(), "permissions": []string{"can_fly"}}), 400, "permissions", ""},
			{"invalid: too long text", alice, "grp3refused0003", rigOp("chat_messages", map[string]any{"room": "grp3refused0003", "text": strings.Repeat("x", 4001)}), 400, "text", ""},
			{"no permission: reader posts in the channel", carol, "grp3refused0004", rigOp("chat_messages", map[string]any{"room": channel, "text": "hi all"}), 403, "", "can_create_messages"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				res := r.Do(tc.actor, http.MethodPost, "/api/batch", rigBatch(
					rigOp("chat_rooms", map[string]any{"id": tc.room, "type": "group", "name": "Never"}),
					rigOp("chat_room_users", map[string]any{"room": tc.room, "user": bob.ID()}),
					tc.third,
				))
				if res.Status != http.StatusBadRequest {
					t.Fatalf("batch = %d, want 400: %s", res.Status, res)
				}
				failed := rigMap(rigMap(rigMap(res.JSON()["data"])["requests"])["2"])
				if failed == nil {
					t.Fatalf("batch error does not point at request 2: %s", res)
				}
				inner := &chattest.Response{Status: tc.status}
				inner.Body = rigEncode(t, failed["response"])
				if got := int(rigMap(failed["response"])["status"].(float64)); got != tc.status {
					t.Fatalf("refused operation status = %d, want %d: %s", got, tc.status, res)
				}
				if tc.field != "" {
					rigExpectField(t, inner, tc.field)
				}
				if tc.missing != "" {
					rigExpectForbidden(t, inner, tc.missing)
				}
				if n := r.Count("chat_rooms", "id = {:id}", dbx.Params{"id": tc.room}); n != 0 {
					t.Fatalf("the batch's room was left behind")
				}
				r.expectSnapshot(before)
			})
		}
	})
}

// Flow (c): a news channel with an editor and readers.
func TestFlowNewsChannel(t *testing.T) {
	r := newRig(t, chatmodule.Config{})
	alice, editor := r.NewUser("alice"), r.NewUser("editor")
	readers := []*chattest.User{r.NewUser("reader1"), r.NewUser("reader2")}

	channel := r.createRoom(alice, "channel", "pbchat news")
	editorPermissions := []string{"can_create_messages", "can_edit_own_messages", "can_delete_own_messages", "can_add_users"}
	r.addMember(alice, channel, editor, editorPermissions)
	if got := r.membership(channel, editor).GetStringSlice("permissions"); !rigSameSet(got, editorPermissions) {
		t.Fatalf("editor's permissions = %v, want %v", got, editorPermissions)
	}
	for _, reader := range readers {
		r.addMember(alice, channel, reader, []string{})
		if got := r.membership(channel, reader).GetStringSlice("permissions"); len(got) != 0 {
			t.Fatalf("reader's permissions = %v, want none", got)
		}
	}

	welcome := r.post(alice, channel, "Welcome to the channel")
	news := r.post(editor, channel, "Version 1 is out")

	// The editor edits their own post.
	edit := r.Do(editor, http.MethodPatch, "/api/collections/chat_messages/records/"+news, map[string]any{"text": "Version 1.0 is out"})
	r.expect(edit, http.StatusOK, "editor edits own post")
	if edit.Str("edited_at") == "" {
		t.Fatalf("edited_at not set on edit: %s", edit)
	}

	for i, reader := range readers {
		// Read.
		res := r.Do(reader, http.MethodGet, "/api/collections/chat_messages/records?sort=created&filter="+url.QueryEscape(fmt.Sprintf("room=%q && system = ''", channel)), nil)
		r.expect(res, http.StatusOK, "reader lists messages")
		var ids []string
		for _, item := range res.Items() {
			ids = append(ids, item["id"].(string))
		}
		if !rigSameSet(ids, []string{welcome, news}) {
			t.Fatalf("reader sees %v, want both posts", ids)
		}
		// React.
		react := r.Do(reader, http.MethodPost, "/api/collections/chat_message_reactions/records",
			map[string]any{"message": news, "reaction": "🎉"})
		r.expect(react, http.StatusOK, "reader reacts")
		if react.Str("user") != reader.ID() {
			t.Fatalf("reaction user = %q, want the reader", react.Str("user"))
		}
		// But not post.
		before := r.Count("chat_messages", "room = {:r}", dbx.Params{"r": channel})
		res = r.Do(reader, http.MethodPost, "/api/collections/chat_messages/records", map[string]any{"room": channel, "text": "me too"})
		rigExpectForbidden(t, res, "can_create_messages")
		if after := r.Count("chat_messages", "room = {:r}", dbx.Params{"r": channel}); after != before {
			t.Fatalf("a refused post left a message behind")
		}
		// Nor grant themselves posting rights.
		own := r.membership(channel, reader)
		res = r.Do(reader, http.MethodPatch, "/api/collections/chat_room_users/records/"+own.Id,
			map[string]any{"permissions": []string{"can_create_messages"}})
		if res.Status != http.StatusForbidden {
			t.Fatalf("reader grants self posting = %d, want 403: %s", res.Status, res)
		}
		// Nor invite (an explicit empty list means none, can_add_users included).
		res = r.Do(reader, http.MethodPost, "/api/collections/chat_room_users/records",
			map[string]any{"room": channel, "user": r.NewUser(fmt.Sprintf("friend%d", i)).ID()})
		rigExpectForbidden(t, res, "can_add_users")
	}
	if n := r.Count("chat_message_reactions", "message = {:m}", dbx.Params{"m": news}); n != len(readers) {
		t.Fatalf("reactions = %d, want %d", n, len(readers))
	}
}

// ---------------------------------------------------------------------------
// Helpers shared by the e2e files of this helper's set (flows, errors,
// invariants). Every top-level name starts with "rig" so they cannot collide
// with other files of the package.

// rig is one app with pbchat and the test it belongs to.
type rig struct {
	*chattest.Env
	t *testing.T
}

func newRig(t *testing.T, config chatmodule.Config) *rig {
	t.Helper()
	return &rig{Env: chattest.New(t, config), t: t}
}

// expect fails the test unless res has status.
func (r *rig) expect(res *chattest.Response, status int, what string) {
	r.t.Helper()
	if res.Status != status {
		r.t.Fatalf("%s: status %d, want %d: %s", what, res.Status, status, res)
	}
}

// createRoom creates a room as u through the records API and returns its id.
func (r *rig) createRoom(u *chattest.User, roomType, name string) string {
	r.t.Helper()
	res := r.Do(u, http.MethodPost, "/api/collections/chat_rooms/records", map[string]any{"type": roomType, "name": name})
	r.expect(res, http.StatusOK, "create "+roomType+" room")
	return res.Str("id")
}

// addMember adds user to room as actor; permissions nil leaves the key out
// (room type default), an empty slice sends "permissions": [].
func (r *rig) addMember(actor *chattest.User, room string, user *chattest.User, permissions []string) string {
	r.t.Helper()
	body := map[string]any{"room": room, "user": user.ID()}
	if permissions != nil {
		body["permissions"] = permissions
	}
	res := r.Do(actor, http.MethodPost, "/api/collections/chat_room_users/records", body)
	r.expect(res, http.StatusOK, "add member")
	return res.Str("id")
}

// post sends a message as u and returns its id.
func (r *rig) post(u *chattest.User, room, text string, media ...string) string {
	r.t.Helper()
	body := map[string]any{"room": room, "text": text}
	if len(media) > 0 {
		body["media"] = media
	}
	res := r.Do(u, http.MethodPost, "/api/collections/chat_messages/records", body)
	r.expect(res, http.StatusOK, "post message")
	return res.Str("id")
}

// react adds a reaction as u and returns its id.
func (r *rig) react(u *chattest.User, message, reaction string) string {
	r.t.Helper()
	res := r.Do(u, http.MethodPost, "/api/collections/chat_message_reactions/records", map[string]any{"message": message, "reaction": reaction})
	r.expect(res, http.StatusOK, "react")
	return res.Str("id")
}

// upload stores a small PNG as u's chat_media and returns its id.
func (r *rig) upload(u *chattest.User) string {
	r.t.Helper()
	res := r.Upload(u, http.MethodPost, "/api/collections/chat_media/records", nil,
		chattest.File{Field: "file", Name: "pic.png", Content: chattest.PNG(8, 8)})
	r.expect(res, http.StatusOK, "upload media")
	return res.Str("id")
}

func (r *rig) fileToken(u *chattest.User) string {
	r.t.Helper()
	res := r.Do(u, http.MethodPost, "/api/files/token", nil)
	r.expect(res, http.StatusOK, "file token")
	token := res.Str("token")
	if token == "" {
		r.t.Fatalf("no file token: %s", res)
	}
	return token
}

// membership returns the (room, user) membership record.
func (r *rig) membership(room string, u *chattest.User) *core.Record {
	r.t.Helper()
	record, err := r.App.FindFirstRecordByFilter("chat_room_users", "room = {:r} && user = {:u}", dbx.Params{"r": room, "u": u.ID()})
	if err != nil {
		r.t.Fatalf("membership of %s in %s: %v", u.ID(), room, err)
	}
	return record
}

// rigCollections are the collections a snapshot counts.
var rigCollections = []string{"chat_rooms", "chat_room_users", "chat_messages", "chat_media", "chat_message_media", "chat_message_reactions"}

// rigSnapshot is every row of every chat collection (as its JSON) and every
// file in storage: equal snapshots mean nothing was written.
type rigSnapshot struct {
	rows  map[string][]string
	files []string
}

func (r *rig) snapshot() rigSnapshot {
	r.t.Helper()
	s := rigSnapshot{rows: map[string][]string{}, files: r.storageFiles()}
	for _, c := range rigCollections {
		records, err := r.App.FindAllRecords(c)
		if err != nil {
			r.t.Fatalf("snapshot %s: %v", c, err)
		}
		rows := make([]string, 0, len(records))
		for _, record := range records {
			rows = append(rows, string(rigEncode(r.t, record)))
		}
		slices.Sort(rows)
		s.rows[c] = rows
	}
	return s
}

// expectSnapshot fails when any row or file differs from before.
func (r *rig) expectSnapshot(before rigSnapshot) {
	r.t.Helper()
	after := r.snapshot()
	for _, c := range rigCollections {
		if len(after.rows[c]) != len(before.rows[c]) {
			r.t.Errorf("%s: %d rows, want %d (nothing may be half-written)", c, len(after.rows[c]), len(before.rows[c]))
		} else if !slices.Equal(after.rows[c], before.rows[c]) {
			r.t.Errorf("%s: rows changed:\nbefore %v\nafter  %v", c, before.rows[c], after.rows[c])
		}
	}
	if !slices.Equal(after.files, before.files) {
		r.t.Errorf("storage files changed:\nbefore %v\nafter  %v", before.files, after.files)
	}
}

// storageFiles lists every file under the app's storage dir (thumbs included).
func (r *rig) storageFiles() []string {
	r.t.Helper()
	root := filepath.Join(r.App.DataDir(), "storage")
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			// PocketBase deletes files in the background: what vanished mid-walk is gone.
			if errors.Is(err, fs.ErrNotExist) {
				return filepath.SkipDir
			}
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(root, path)
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		r.t.Fatalf("walk storage: %v", err)
	}
	slices.Sort(files)
	return files
}

// rigBatch is the body of POST /api/batch.
func rigBatch(ops ...map[string]any) map[string]any {
	return map[string]any{"requests": ops}
}

// rigOp is one create operation of a batch.
func rigOp(collection string, body map[string]any) map[string]any {
	return map[string]any{"method": http.MethodPost, "url": "/api/collections/" + collection + "/records", "body": body}
}

// rigExpectForbidden checks PocketBase's 403 naming permission in the
// message and in data.permission.
func rigExpectForbidden(t testing.TB, res *chattest.Response, permission string) {
	t.Helper()
	if res.Status != http.StatusForbidden {
		t.Fatalf("status %d, want 403 naming %s: %s", res.Status, permission, res)
	}
	body := res.JSON()
	message, _ := body["message"].(string)
	if !strings.Contains(strings.ToLower(message), permission) {
		t.Fatalf("403 message %q does not name %s", message, permission)
	}
	detail, _ := rigMap(rigMap(body["data"])["permission"])["message"].(string)
	if !strings.Contains(strings.ToLower(detail), permission) {
		t.Fatalf("403 data.permission = %v, want it to name %s", rigMap(body["data"])["permission"], permission)
	}
}

// rigExpectField checks a 400 with a field error for field in data.
func rigExpectField(t testing.TB, res *chattest.Response, field string) {
	t.Helper()
	if res.Status != http.StatusBadRequest {
		t.Fatalf("status %d, want 400 with data.%s: %s", res.Status, field, res)
	}
	errData := rigMap(rigMap(res.JSON()["data"])[field])
	if errData == nil || errData["code"] == nil || errData["message"] == nil {
		t.Fatalf("400 without a field error for %q: %s", field, res)
	}
}

func rigMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func rigList(v any) []map[string]any {
	items, _ := v.([]any)
	out := make([]map[string]any, 0, len(items))
	for _, item := range items {
		out = append(out, rigMap(item))
	}
	return out
}

func rigSameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func rigDecode(t testing.TB, raw []byte, out any) {
	t.Helper()
	if err := json.Unmarshal(raw, out); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
}

func rigEncode(t testing.TB, v any) []byte {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}
