package e2e

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"github.com/pbchat/pbchat/chatmodule"
	"github.com/pbchat/pbchat/internal/chattest"
)

const pinsMessagesURL = "/api/collections/chat_messages/records"

// Pins: a member holding can_pin_messages pins and unpins with
// {"pinned": true|false}; others get 403 naming it; the request may change
// nothing else; pinned_at and pinned_by are the server's.
func TestPinsGrantAndRefuse(t *testing.T) {
	r := newRig(t, chatmodule.Config{})
	alice, bob := r.NewUser("alice"), r.NewUser("bob")
	room := r.createRoom(alice, "group", "Pins")
	r.addMember(alice, room, bob, nil) // group member default: no can_pin_messages
	msg := r.post(bob, room, "pin me")
	msgURL := pinsMessagesURL + "/" + msg

	// Creators of groups and channels hold it; private rooms nobody.
	if perms := r.membership(room, alice).GetStringSlice("permissions"); !strings.Contains(strings.Join(perms, ","), "can_pin_messages") {
		t.Fatalf("group creator permissions = %v, want can_pin_messages", perms)
	}
	channel := r.createRoom(alice, "channel", "News")
	if perms := r.membership(channel, alice).GetStringSlice("permissions"); !strings.Contains(strings.Join(perms, ","), "can_pin_messages") {
		t.Fatalf("channel creator permissions = %v, want can_pin_messages", perms)
	}
	if perms := r.membership(room, bob).GetStringSlice("permissions"); strings.Contains(strings.Join(perms, ","), "can_pin_messages") {
		t.Fatalf("group member default permissions = %v, want no can_pin_messages", perms)
	}

	// Refused: a member without the permission, even on their own message.
	rigExpectForbidden(t, r.Do(bob, http.MethodPatch, msgURL, map[string]any{"pinned": true}), "can_pin_messages")
	// Refused: the pin fields written directly, by a member.
	rigExpectField(t, r.Do(bob, http.MethodPatch, msgURL, map[string]any{"pinned_at": "2026-01-01 00:00:00.000Z"}), "pinned_at")
	rigExpectField(t, r.Do(bob, http.MethodPatch, msgURL, map[string]any{"pinned_by": bob.ID()}), "pinned_by")
	rigExpectField(t, r.Do(bob, http.MethodPost, pinsMessagesURL, map[string]any{"room": room, "text": "x", "pinned_by": bob.ID()}), "pinned_by")
	// Refused: a pin request that changes anything else, or is not a bool.
	rigExpectField(t, r.Do(alice, http.MethodPatch, msgURL, map[string]any{"pinned": true, "text": "changed"}), "pinned")
	rigExpectField(t, r.Do(alice, http.MethodPatch, msgURL, map[string]any{"pinned": "yes"}), "pinned")
	if got := r.record("chat_messages", msg); got.GetString("pinned_at") != "" || got.GetString("text") != "pin me" {
		t.Fatalf("refused requests changed the message: %v", got)
	}

	// Granted: the creator pins someone else's message (no can_edit_* used).
	res := r.Do(alice, http.MethodPatch, msgURL, map[string]any{"pinned": true})
	r.expect(res, http.StatusOK, "pin")
	if res.Str("pinned_at") == "" || res.Str("pinned_by") != alice.ID() || res.Str("edited_at") != "" {
		t.Fatalf("pinned message = %s, want pinned_at set, pinned_by alice, not edited", res)
	}
	pinned := r.Do(bob, http.MethodGet, pinsMessagesURL+"?sort=-pinned_at&filter="+url.QueryEscape(fmt.Sprintf("room=%q && pinned_at != ''", room)), nil)
	r.expect(pinned, http.StatusOK, "list pinned")
	if items := pinned.Items(); len(items) != 1 || items[0]["id"] != msg {
		t.Fatalf("pinned list = %s, want only %s", pinned, msg)
	}

	// Granted after a grant: bob, given can_pin_messages, unpins.
	membership := r.membership(room, bob)
	perms := append(membership.GetStringSlice("permissions"), "can_pin_messages")
	r.expect(r.Do(alice, http.MethodPatch, "/api/collections/chat_room_users/records/"+membership.Id, map[string]any{"permissions": perms}), http.StatusOK, "grant can_pin_messages")
	res = r.Do(bob, http.MethodPatch, msgURL, map[string]any{"pinned": false})
	r.expect(res, http.StatusOK, "unpin")
	if res.Str("pinned_at") != "" || res.Str("pinned_by") != "" {
		t.Fatalf("unpinned message = %s", res)
	}

	// A member who lacks can_pin_messages cannot grant it ("not above me").
	carol := r.NewUser("carol")
	res = r.Do(bob, http.MethodPost, "/api/collections/chat_room_users/records",
		map[string]any{"room": room, "user": carol.ID(), "permissions": []string{"can_pin_messages"}})
	if res.Status != http.StatusOK {
		t.Fatalf("bob (holding can_pin_messages now) grants it: %s", res)
	}
}

// systemMessages returns the room's system messages, oldest first.
func (r *rig) systemMessages(room string) []*core.Record {
	r.t.Helper()
	records, err := r.App.FindRecordsByFilter("chat_messages", "room = {:r} && system != ''", "created,id", 0, 0, dbx.Params{"r": room})
	if err != nil {
		r.t.Fatal(err)
	}
	return records
}

func expectSystem(t *testing.T, m *core.Record, kind, user string, data map[string]string) {
	t.Helper()
	if m.GetString("system") != kind || m.GetString("user") != user {
		t.Fatalf("system message = %s by %s, want %s by %s", m.GetString("system"), m.GetString("user"), kind, user)
	}
	var got map[string]any
	if err := m.UnmarshalJSONField("system_data", &got); err != nil {
		t.Fatal(err)
	}
	for k, v := range data {
		if got[k] != v {
			t.Fatalf("%s system_data[%s] = %v, want %q (%v)", kind, k, got[k], v, got)
		}
	}
}

// System messages: written in the transaction of a membership change and a
// rename; not unread; in sync as message.created; nobody edits them.
func TestSystemMessages(t *testing.T) {
	r := newRig(t, chatmodule.Config{})
	alice, bob, carol := r.NewUser("alice"), r.NewUser("bob"), r.NewUser("carol")
	room := r.createRoom(alice, "group", "Team")
	if got := r.systemMessages(room); len(got) != 0 {
		t.Fatalf("a new room has %d system messages, want 0 (its creator joins with it)", len(got))
	}
	before := r.Do(bob, http.MethodGet, "/api/chat/sync", nil)
	r.expect(before, http.StatusOK, "sync cursor")
	bobMember := r.addMember(alice, room, bob, nil)
	got := r.systemMessages(room)
	if len(got) != 1 {
		t.Fatalf("system messages after an add = %d, want 1", len(got))
	}
	expectSystem(t, got[0], "member_added", alice.ID(), map[string]string{"user": bob.ID(), "by": alice.ID()})
	added := got[0].Id

	// Not unread for anybody.
	unread := r.Do(bob, http.MethodGet, "/api/chat/unread", nil)
	r.expect(unread, http.StatusOK, "unread")
	if total := unread.JSON()["total"]; total != float64(0) {
		t.Fatalf("bob's unread after being added = %s, want total 0", unread)
	}
	// In sync, as message.created.
	syncRes := r.Do(bob, http.MethodGet, "/api/chat/sync?since="+url.QueryEscape(before.Str("cursor")), nil)
	r.expect(syncRes, http.StatusOK, "sync")
	if !strings.Contains(syncRes.String(), `"type":"message.created"`) || !strings.Contains(syncRes.String(), added) {
		t.Fatalf("sync lacks the system message %s as message.created: %s", added, syncRes)
	}

	// Rename.
	r.expect(r.Do(alice, http.MethodPatch, "/api/collections/chat_rooms/records/"+room, map[string]any{"name": "Team 2"}), http.StatusOK, "rename")
	got = r.systemMessages(room)
	expectSystem(t, got[len(got)-1], "room_renamed", alice.ID(), map[string]string{"name": "Team 2", "old_name": "Team"})

	// Removal by someone else, and leaving.
	r.expect(r.Do(alice, http.MethodDelete, "/api/collections/chat_room_users/records/"+bobMember, nil), http.StatusNoContent, "remove bob")
	got = r.systemMessages(room)
	expectSystem(t, got[len(got)-1], "member_removed", alice.ID(), map[string]string{"user": bob.ID(), "by": alice.ID()})

	public := r.Do(alice, http.MethodPost, "/api/collections/chat_rooms/records", map[string]any{"type": "channel", "name": "Open", "is_public": true})
	r.expect(public, http.StatusOK, "public channel")
	carolMember := r.addMember(carol, public.Str("id"), carol, nil)
	got = r.systemMessages(public.Str("id"))
	expectSystem(t, got[len(got)-1], "member_joined", carol.ID(), map[string]string{"user": carol.ID(), "by": carol.ID()})
	r.expect(r.Do(carol, http.MethodDelete, "/api/collections/chat_room_users/records/"+carolMember, nil), http.StatusNoContent, "carol leaves")
	got = r.systemMessages(public.Str("id"))
	expectSystem(t, got[len(got)-1], "member_left", carol.ID(), map[string]string{"user": carol.ID(), "by": carol.ID()})

	// Private rooms tell nothing.
	private := r.Do(alice, http.MethodPost, "/api/chat/private", map[string]any{"user": bob.ID()})
	if private.Status != http.StatusOK && private.Status != http.StatusCreated {
		t.Fatalf("private room: %s", private)
	}
	if n := len(r.systemMessages(private.Str("id"))); n != 0 {
		t.Fatalf("private room system messages = %d, want 0", n)
	}

	// Nobody edits them: a superuser through the records API (the dashboard's path)...
	su := r.Superuser()
	rigExpectField(t, r.Do(su, http.MethodPatch, pinsMessagesURL+"/"+added, map[string]any{"text": "edited"}), "text")
	rigExpectField(t, r.Do(su, http.MethodPatch, pinsMessagesURL+"/"+added, map[string]any{"system": "room_renamed"}), "system")
	rigExpectField(t, r.Do(su, http.MethodPatch, pinsMessagesURL+"/"+added, map[string]any{"system_data": map[string]any{"user": carol.ID()}}), "system_data")
	// ...its author...
	if res := r.Do(alice, http.MethodPatch, pinsMessagesURL+"/"+added, map[string]any{"text": "edited"}); res.Status < 400 {
		t.Fatalf("author edits a system message: %s", res)
	}
	// ...and Go.
	record := r.record("chat_messages", added)
	record.Set("text", "edited by Go")
	if err := r.App.Save(record); err == nil || !strings.Contains(err.Error(), "text") {
		t.Fatalf("Go edits a system message: err = %v, want one naming text", err)
	}
	record = r.record("chat_messages", added)
	record.Set("system_data", map[string]any{"user": carol.ID()})
	if err := r.App.Save(record); err == nil || !strings.Contains(err.Error(), "system_data") {
		t.Fatalf("Go edits system_data: err = %v", err)
	}
	if m := r.record("chat_messages", added); m.GetString("text") != "" || !strings.Contains(m.GetString("system_data"), bob.ID()) {
		t.Fatalf("the system message changed: %v", m)
	}
	// A pin is not an edit: a holder pins a system message.
	r.expect(r.Do(alice, http.MethodPatch, pinsMessagesURL+"/"+added, map[string]any{"pinned": true}), http.StatusOK, "pin a system message")

	// Nobody but the server writes one: a member, a superuser, Go.
	rigExpectField(t, r.Do(alice, http.MethodPost, pinsMessagesURL, map[string]any{"room": room, "text": "fake", "system": "member_left"}), "system")
	rigExpectField(t, r.Do(su, http.MethodPost, pinsMessagesURL, map[string]any{"room": room, "user": alice.ID(), "text": "fake", "system": "member_left"}), "system")
	rigExpectField(t, r.Do(alice, http.MethodPost, pinsMessagesURL, map[string]any{"room": room, "text": "fake", "system_data": map[string]any{"user": bob.ID()}}), "system_data")
	normal := r.post(alice, room, "plain")
	// The dashboard sends every field back: a member's message stays editable.
	r.expect(r.Do(su, http.MethodPatch, pinsMessagesURL+"/"+normal, map[string]any{
		"text": "plain, edited", "system": "", "system_data": nil, "pinned_at": "", "pinned_by": "",
	}), http.StatusOK, "superuser edits a member's message with every field")
	rigExpectField(t, r.Do(alice, http.MethodPatch, pinsMessagesURL+"/"+normal, map[string]any{"system": "member_left"}), "system")
	collection, err := r.App.FindCollectionByNameOrId("chat_messages")
	if err != nil {
		t.Fatal(err)
	}
	fake := core.NewRecord(collection)
	fake.Set("room", room)
	fake.Set("user", alice.ID())
	fake.Set("text", "fake")
	fake.Set("system", "member_left")
	if err := r.App.Save(fake); err == nil || !strings.Contains(err.Error(), "system") {
		t.Fatalf("Go writes a system message: err = %v", err)
	}

	// They go with the room.
	r.expect(r.Do(alice, http.MethodDelete, "/api/collections/chat_rooms/records/"+room, nil), http.StatusNoContent, "delete room")
	if n := len(r.systemMessages(room)); n != 0 {
		t.Fatalf("system messages of a deleted room = %d", n)
	}
}

// Read receipts: each member's last_seen_at and the newest message at or
// before it; 404 for a non-member.
func TestReadReceipts(t *testing.T) {
	r := newRig(t, chatmodule.Config{})
	alice, bob, carol := r.NewUser("alice"), r.NewUser("bob"), r.NewUser("carol")
	room := r.createRoom(alice, "group", "Receipts")
	r.addMember(alice, room, bob, nil)
	r.post(alice, room, "one")
	two := r.post(alice, room, "two")
	r.expect(r.Do(bob, http.MethodPost, "/api/chat/rooms/"+room+"/read", nil), http.StatusOK, "bob reads")

	res := r.Do(alice, http.MethodGet, "/api/chat/rooms/"+room+"/receipts", nil)
	r.expect(res, http.StatusOK, "receipts")
	byUser := map[string]map[string]any{}
	for _, item := range res.Items() {
		byUser[item["user"].(string)] = item
	}
	if len(byUser) != 2 {
		t.Fatalf("receipts = %s, want both members", res)
	}
	if got := byUser[bob.ID()]; got["last_read_message"] != two || got["last_seen_at"] == "" {
		t.Fatalf("bob's receipt = %v, want last_read_message %s", got, two)
	}
	if got := byUser[alice.ID()]; got["last_read_message"] != "" || got["last_seen_at"] != "" {
		t.Fatalf("alice's receipt = %v, want nothing read", got)
	}
	// A system message is not read: bob's receipt stays on "two".
	r.addMember(alice, room, r.NewUser("dave"), nil)
	r.expect(r.Do(bob, http.MethodPost, "/api/chat/rooms/"+room+"/read", nil), http.StatusOK, "bob reads again")
	for _, item := range r.Do(alice, http.MethodGet, "/api/chat/rooms/"+room+"/receipts", nil).Items() {
		if item["user"] == bob.ID() && item["last_read_message"] != two {
			t.Fatalf("bob's receipt after a system message = %v, want %s", item, two)
		}
	}
	three := r.post(bob, room, "three")
	r.expect(r.Do(alice, http.MethodPost, "/api/chat/rooms/"+room+"/read", nil), http.StatusOK, "alice reads")
	for _, item := range r.Do(bob, http.MethodGet, "/api/chat/rooms/"+room+"/receipts", nil).Items() {
		if item["user"] == alice.ID() && item["last_read_message"] != three {
			t.Fatalf("alice's receipt = %v, want %s", item, three)
		}
	}

	if res := r.Do(carol, http.MethodGet, "/api/chat/rooms/"+room+"/receipts", nil); res.Status != http.StatusNotFound {
		t.Fatalf("non-member receipts = %d, want 404: %s", res.Status, res)
	}
	if res := r.Do(carol, http.MethodGet, "/api/chat/rooms/nope/receipts", nil); res.Status != http.StatusNotFound {
		t.Fatalf("missing room receipts = %d, want 404", res.Status)
	}
}

// testPDF is a minimal PDF document.
var testPDF = []byte("%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")

// testWAV is a short silent 8 kHz mono WAV file.
func testWAV() []byte {
	samples := make([]byte, 800)
	var b bytes.Buffer
	b.WriteString("RIFF")
	_ = binary.Write(&b, binary.LittleEndian, uint32(36+len(samples)))
	b.WriteString("WAVEfmt ")
	for _, v := range []any{uint32(16), uint16(1), uint16(1), uint32(8000), uint32(8000), uint16(1), uint16(8)} {
		_ = binary.Write(&b, binary.LittleEndian, v)
	}
	b.WriteString("data")
	_ = binary.Write(&b, binary.LittleEndian, uint32(len(samples)))
	b.Write(samples)
	return b.Bytes()
}

// Attachments of any allowed type: a PDF and an audio file are uploaded,
// attached and downloaded with ?download=1; a type off the list is 400 on file.
func TestAttachmentTypes(t *testing.T) {
	r := newRig(t, chatmodule.Config{})
	alice, bob := r.NewUser("alice"), r.NewUser("bob")
	room := r.createRoom(alice, "group", "Files")
	r.addMember(alice, room, bob, nil)

	upload := func(name string, content []byte) *chattest.Response {
		return r.Upload(alice, http.MethodPost, "/api/collections/chat_media/records", nil,
			chattest.File{Field: "file", Name: name, Content: content})
	}
	files := map[string][]byte{"report.pdf": testPDF, "voice.wav": testWAV()}
	ids, names := []string{}, map[string]string{}
	for _, name := range []string{"report.pdf", "voice.wav"} {
		res := upload(name, files[name])
		r.expect(res, http.StatusOK, "upload "+name)
		ids = append(ids, res.Str("id"))
		names[res.Str("id")] = res.Str("file")
	}
	r.post(alice, room, "", ids...)

	token := r.fileToken(bob)
	for i, id := range ids {
		want := files[[]string{"report.pdf", "voice.wav"}[i]]
		res, err := http.Get(r.Server.URL + "/api/files/chat_media/" + id + "/" + names[id] + "?download=1&token=" + token)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || !bytes.Equal(body, want) {
			t.Fatalf("download %s = %d, %d bytes, want 200 with the %d uploaded", names[id], res.StatusCode, len(body), len(want))
		}
		if cd := res.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment") {
			t.Fatalf("download %s Content-Disposition = %q, want attachment", names[id], cd)
		}
	}

	// Pictures keep their thumbs.
	picture := r.upload(alice)
	pictureRes := r.Do(alice, http.MethodGet, "/api/collections/chat_media/records/"+picture, nil)
	thumb := r.Do(nil, http.MethodGet, "/api/files/chat_media/"+picture+"/"+pictureRes.Str("file")+"?thumb=100x100&token="+r.fileToken(alice), nil)
	r.expect(thumb, http.StatusOK, "thumb")
	if !bytes.HasPrefix(thumb.Body, []byte("\x89PNG")) {
		t.Fatalf("thumb is not a PNG")
	}

	// Off the list: a page, an executable.
	rigExpectField(t, upload("page.html", []byte("<!DOCTYPE html><html><body><script>alert(1)</script></body></html>")), "file")
	rigExpectField(t, upload("tool.exe", append([]byte("MZ\x90\x00\x03\x00\x00\x00"), make([]byte, 200)...)), "file")
}

// Config.MediaTypes narrows the allow-list (carried into the schema).
func TestAttachmentTypesConfig(t *testing.T) {
	r := newRig(t, chatmodule.Config{MediaTypes: []string{"application/pdf"}})
	alice := r.NewUser("alice")
	res := r.Upload(alice, http.MethodPost, "/api/collections/chat_media/records", nil, chattest.File{Field: "file", Name: "a.pdf", Content: testPDF})
	r.expect(res, http.StatusOK, "pdf allowed")
	rigExpectField(t, r.Upload(alice, http.MethodPost, "/api/collections/chat_media/records", nil,
		chattest.File{Field: "file", Name: "a.png", Content: chattest.PNG(4, 4)}), "file")
}

// record reads a record as it is stored.
func (r *rig) record(collection, id string) *core.Record {
	r.t.Helper()
	record, err := r.App.FindRecordById(collection, id)
	if err != nil {
		r.t.Fatalf("%s %s: %v", collection, id, err)
	}
	return record
}

// TestSystemMessageDeletedOnlyWithItsRoom: nobody deletes a system message
// through the records API, not even the dashboard; it goes with its room.
func TestSystemMessageDeletedOnlyWithItsRoom(t *testing.T) {
	env := chattest.New(t, chatmodule.Config{RateLimits: chatmodule.RateLimits{Disabled: true}})
	alice, bob, admin := env.NewUser("alice"), env.NewUser("bob"), env.Superuser()
	room := env.Do(alice, http.MethodPost, "/api/collections/chat_rooms/records", map[string]any{"type": "group", "name": "g"}).Str("id")
	if res := env.Do(alice, http.MethodPost, "/api/collections/chat_room_users/records", map[string]any{"room": room, "user": bob.ID()}); res.Status != http.StatusOK {
		t.Fatalf("add bob: %d %s", res.Status, res)
	}
	notice, err := env.App.FindFirstRecordByFilter("chat_messages", "room = {:r} && system != ''", dbx.Params{"r": room})
	if err != nil {
		t.Fatalf("no system message: %v", err)
	}
	for _, who := range []*chattest.User{alice, admin} {
		res := env.Do(who, http.MethodDelete, "/api/collections/chat_messages/records/"+notice.Id, nil)
		data, _ := res.JSON()["data"].(map[string]any)
		if res.Status != http.StatusBadRequest || data["system"] == nil {
			t.Errorf("delete by %s: %d %s, want 400 naming system", who.Record.Collection().Name, res.Status, res)
		}
	}
	if res := env.Do(alice, http.MethodDelete, "/api/collections/chat_rooms/records/"+room, nil); res.Status != http.StatusNoContent {
		t.Fatalf("delete room: %d %s", res.Status, res)
	}
	if _, err := env.App.FindRecordById("chat_messages", notice.Id); err == nil {
		t.Error("the system message outlived its room")
	}
}
