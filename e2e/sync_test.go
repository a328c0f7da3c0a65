package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"github.com/pbchat/pbchat/chatmodule"
	"github.com/pbchat/pbchat/hooks"
	"github.com/pbchat/pbchat/internal/chattest"
)

// syncAnswer is the body of GET /api/chat/sync.
type syncAnswer struct {
	Cursor string      `json:"cursor"`
	More   bool        `json:"more"`
	Reset  bool        `json:"reset"`
	Events []syncEvent `json:"events"`
}

type syncEvent struct {
	Cursor     string         `json:"cursor"`
	Type       string         `json:"type"`
	Room       string         `json:"room"`
	Collection string         `json:"collection"`
	Action     string         `json:"action"`
	Record     map[string]any `json:"record"`
}

func (e syncEvent) id() string { s, _ := e.Record["id"].(string); return s }

func (e syncEvent) String() string { return e.Type + " " + e.id() }

// syncPage asks GET /api/chat/sync once as u; since "" leaves it out, limit 0 too.
func (r *rig) syncPage(u *chattest.User, since string, limit int) syncAnswer {
	r.t.Helper()
	query := url.Values{}
	if since != "" {
		query.Set("since", since)
	}
	if limit > 0 {
		query.Set("limit", strconv.Itoa(limit))
	}
	res := r.Do(u, http.MethodGet, "/api/chat/sync?"+query.Encode(), nil)
	r.expect(res, http.StatusOK, "sync")
	var answer syncAnswer
	rigDecode(r.t, res.Body, &answer)
	return answer
}

// head is u's starting point: sync without since.
func (r *rig) head(u *chattest.User) string {
	r.t.Helper()
	answer := r.syncPage(u, "", 0)
	if answer.Cursor == "" || answer.Reset || len(answer.Events) != 0 {
		r.t.Fatalf("sync without since: %+v", answer)
	}
	return answer.Cursor
}

// syncAll follows "more" from since and returns every event and the cursor to resume from.
func (r *rig) syncAll(u *chattest.User, since string) ([]syncEvent, string) {
	r.t.Helper()
	var all []syncEvent
	for page := 0; ; page++ {
		answer := r.syncPage(u, since, 0)
		if answer.Reset {
			r.t.Fatalf("sync from %q: reset", since)
		}
		for _, event := range answer.Events {
			// System messages (member_added, …) are the server's: their
			// events are checked in conversations_pins_test.go.
			if system, _ := event.Record["system"].(string); system != "" && event.Action != "delete" {
				continue
			}
			all = append(all, event)
		}
		since = answer.Cursor
		if !answer.More {
			return all, since
		}
		if page > 100 {
			r.t.Fatal("sync: more than 100 pages")
		}
	}
}

// cursorSeq is the position part of a cursor ("<epoch>.<seq>"); cursors are
// opaque to clients, the test looks inside to check that they only grow.
func cursorSeq(t testing.TB, c string) int64 {
	t.Helper()
	_, seq, ok := strings.Cut(c, ".")
	n, err := strconv.ParseInt(seq, 10, 64)
	if !ok || err != nil {
		t.Fatalf("cursor %q is not <epoch>.<seq>", c)
	}
	return n
}

func checkGrowing(t testing.TB, events []syncEvent, after string) {
	t.Helper()
	last := cursorSeq(t, after)
	for _, ev := range events {
		seq := cursorSeq(t, ev.Cursor)
		if seq <= last {
			t.Fatalf("cursor of %s is %s, not after %d: %v", ev, ev.Cursor, last, events)
		}
		last = seq
	}
}

func eventTypes(events []syncEvent) []string {
	out := make([]string, len(events))
	for i, ev := range events {
		out[i] = ev.String()
	}
	return out
}

func (r *rig) patch(u *chattest.User, collection, id string, body map[string]any) {
	r.t.Helper()
	r.expect(r.Do(u, http.MethodPatch, "/api/collections/"+collection+"/records/"+id, body), http.StatusOK, "update "+collection)
}

func (r *rig) remove(u *chattest.User, collection, id string) {
	r.t.Helper()
	r.expect(r.Do(u, http.MethodDelete, "/api/collections/"+collection+"/records/"+id, nil), http.StatusNoContent, "delete "+collection)
}

func (r *rig) logRows() int {
	r.t.Helper()
	var n int
	if err := r.App.DB().NewQuery("SELECT count(*) FROM _pbchat_events").Row(&n); err != nil {
		r.t.Fatal(err)
	}
	return n
}

// TestSyncEveryEventType: every change with a realtime type reaches a member
// through sync, in order, with growing cursors; a record changed and then
// deleted in the gap comes as its deletion only.
func TestSyncEveryEventType(t *testing.T) {
	r := newRig(t, chatmodule.Config{})
	alice, bob, carol, dave := r.NewUser("alice"), r.NewUser("bob"), r.NewUser("carol"), r.NewUser("dave")
	group := r.createRoom(alice, "group", "trip")
	r.addMember(alice, group, bob, nil)
	m0 := r.post(alice, group, "before the gap")
	r0 := r.react(bob, m0, "👍")
	since := r.head(bob)

	var m1, m2, carolMembership, daveMembership, r1 string
	steps := []struct {
		name string
		do   func()
		want string // the event bob gets, "" when a later step removes it again
	}{
		{"edit a message", func() { r.patch(alice, "chat_messages", m0, map[string]any{"text": "edited"}) }, "message.updated " + m0},
		{"post", func() { m1 = r.post(alice, group, "gone soon") }, ""},
		{"react", func() { r1 = r.react(bob, m0, "🎉") }, "reaction.created {r1}"},
		{"unreact", func() { r.remove(bob, "chat_message_reactions", r0) }, "reaction.deleted " + r0},
		{"rename the room", func() { r.patch(alice, "chat_rooms", group, map[string]any{"name": "trip 2"}) }, "room.updated " + group},
		{"mark read", func() {
			r.expect(r.Do(bob, http.MethodPost, "/api/chat/rooms/"+group+"/read", nil), http.StatusOK, "read")
		}, "member.updated {bob}"},
		{"add carol", func() { carolMembership = r.addMember(alice, group, carol, nil) }, ""},
		{"remove carol", func() { r.remove(alice, "chat_room_users", carolMembership) }, "member.left {carol}"},
		{"delete the post", func() { r.remove(alice, "chat_messages", m1) }, "message.deleted {m1}"},
		{"post again", func() { m2 = r.post(alice, group, "stays") }, "message.created {m2}"},
		{"add dave", func() { daveMembership = r.addMember(alice, group, dave, nil) }, "member.joined {dave}"},
	}
	var want []string
	for _, step := range steps {
		step.do()
		if step.want != "" {
			want = append(want, step.want)
		}
	}
	bobMembership := r.membership(group, bob).Id
	ids := strings.NewReplacer("{r1}", r1, "{bob}", bobMembership, "{carol}", carolMembership, "{m1}", m1, "{m2}", m2, "{dave}", daveMembership)
	for i := range want {
		want[i] = ids.Replace(want[i])
	}

	events, cursor := r.syncAll(bob, since)
	if got := eventTypes(events); !slices.Equal(got, want) {
		t.Fatalf("bob's events:\n got %v\nwant %v", got, want)
	}
	checkGrowing(t, events, since)
	if events[0].Record["text"] != "edited" || events[0].Room != group || events[0].Collection != "chat_messages" || events[0].Action != "update" {
		t.Fatalf("message.updated: %+v", events[0])
	}
	for _, ev := range events {
		if ev.Room != group {
			t.Fatalf("%s: room %q, want %q", ev, ev.Room, group)
		}
		if ev.Type == "member.left" && (ev.Record["user"] != carol.ID() || ev.Action != "delete" || ev.Collection != "chat_room_users") {
			t.Fatalf("member.left tombstone: %+v", ev)
		}
		if ev.Type == "reaction.deleted" && ev.Record["message"] != m0 {
			t.Fatalf("reaction.deleted tombstone: %+v", ev)
		}
	}
	if again, _ := r.syncAll(bob, cursor); len(again) != 0 {
		t.Fatalf("sync from the last cursor: %v", eventTypes(again))
	}

	// A deleted room: its members get room.deleted and their own member.left.
	doomed := r.createRoom(alice, "group", "doomed")
	r.addMember(alice, doomed, bob, nil)
	r.post(alice, doomed, "last words")
	since = r.head(bob)
	bobInDoomed := r.membership(doomed, bob).Id
	r.remove(alice, "chat_rooms", doomed)
	events, _ = r.syncAll(bob, since)
	if got, want := eventTypes(events), []string{"room.deleted " + doomed, "member.left " + bobInDoomed}; !slices.Equal(got, want) {
		t.Fatalf("after the room's deletion bob got %v, want %v", got, want)
	}
}

// TestSyncGapEditsAndDeletes: a message created and edited twice in the gap
// comes once, as created, in its latest state; one edited twice comes once
// as updated; one deleted comes as a tombstone.
func TestSyncGapEditsAndDeletes(t *testing.T) {
	r := newRig(t, chatmodule.Config{})
	alice, bob := r.NewUser("alice"), r.NewUser("bob")
	group := r.createRoom(alice, "group", "g")
	r.addMember(alice, group, bob, nil)
	old := r.post(alice, group, "old")
	doomed := r.post(alice, group, "doomed")
	since := r.head(bob)

	fresh := r.post(alice, group, "fresh v1")
	r.patch(alice, "chat_messages", fresh, map[string]any{"text": "fresh v2"})
	r.patch(alice, "chat_messages", old, map[string]any{"text": "old v2"})
	r.patch(alice, "chat_messages", fresh, map[string]any{"text": "fresh v3"})
	r.patch(alice, "chat_messages", old, map[string]any{"text": "old v3"})
	r.remove(alice, "chat_messages", doomed)

	events, _ := r.syncAll(bob, since)
	want := []string{"message.created " + fresh, "message.updated " + old, "message.deleted " + doomed}
	if got := eventTypes(events); !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if events[0].Record["text"] != "fresh v3" || events[1].Record["text"] != "old v3" || events[1].Record["edited_at"] == "" {
		t.Fatalf("not the latest state: %+v %+v", events[0].Record, events[1].Record)
	}
	if rec := events[2].Record; rec["room"] != group || rec["collectionName"] != "chat_messages" || len(rec) > 4 {
		t.Fatalf("tombstone: %v", rec)
	}
	checkGrowing(t, events, since)
}

// TestSyncMembershipScope: a user gets a room's events only while a member.
func TestSyncMembershipScope(t *testing.T) {
	tests := []struct {
		name string
		// gap runs between the user's cursor and the sync; it returns the
		// events the user must get, in order.
		gap func(r *rig, admin, user *chattest.User, room string) []string
	}{
		{"joined: from the join on", func(r *rig, admin, user *chattest.User, room string) []string {
			r.post(admin, room, "before the join")
			membership := r.addMember(admin, room, user, nil)
			after := r.post(admin, room, "after the join")
			return []string{"member.joined " + membership, "message.created " + after}
		}},
		{"left: the leave and nothing after", func(r *rig, admin, user *chattest.User, room string) []string {
			membership := r.addMember(admin, room, user, nil)
			r.post(admin, room, "still in")
			r.remove(admin, "chat_room_users", membership)
			r.post(admin, room, "after the removal")
			r.patch(admin, "chat_rooms", room, map[string]any{"name": "renamed after"})
			return []string{"member.left " + membership}
		}},
		{"left by themself", func(r *rig, admin, user *chattest.User, room string) []string {
			membership := r.addMember(admin, room, user, nil)
			r.remove(user, "chat_room_users", membership)
			r.post(admin, room, "after leaving")
			return []string{"member.left " + membership}
		}},
		{"rejoined: nothing from the gap between", func(r *rig, admin, user *chattest.User, room string) []string {
			first := r.addMember(admin, room, user, nil)
			r.remove(admin, "chat_room_users", first)
			r.post(admin, room, "while away")
			r.patch(admin, "chat_rooms", room, map[string]any{"name": "renamed while away"})
			second := r.addMember(admin, room, user, nil)
			back := r.post(admin, room, "welcome back")
			return []string{"member.left " + first, "member.joined " + second, "message.created " + back}
		}},
		{"never a member: nothing", func(r *rig, admin, user *chattest.User, room string) []string {
			msg := r.post(admin, room, "not for you")
			r.react(admin, msg, "👍")
			r.patch(admin, "chat_rooms", room, map[string]any{"name": "still not yours"})
			r.addMember(admin, room, r.NewUser("dave"), nil)
			return nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, chatmodule.Config{})
			alice, carol := r.NewUser("alice"), r.NewUser("carol")
			room := r.createRoom(alice, "group", "g")
			own := r.createRoom(carol, "group", "carol's") // carol's own room: its events keep coming
			since := r.head(carol)

			want := tt.gap(r, alice, carol, room)
			ownMsg := r.post(carol, own, "in my own room")
			want = append(want, "message.created "+ownMsg)

			events, _ := r.syncAll(carol, since)
			if got := eventTypes(events); !slices.Equal(got, want) {
				t.Fatalf("carol got %v\nwant %v", got, want)
			}
			checkGrowing(t, events, since)
		})
	}
}

// TestSyncOutsiderNeverSeesARoom: many changes in a room; an outsider who
// syncs from every cursor along the way never gets one of them.
func TestSyncOutsiderNeverSeesARoom(t *testing.T) {
	r := newRig(t, chatmodule.Config{})
	alice, bob, mallory := r.NewUser("alice"), r.NewUser("bob"), r.NewUser("mallory")
	room := r.createRoom(alice, "group", "secret")
	membership := r.addMember(alice, room, bob, nil)
	since := r.head(mallory)
	msg := r.post(alice, room, "secret")
	r.react(bob, msg, "👍")
	r.patch(alice, "chat_messages", msg, map[string]any{"text": "still secret"})
	r.patch(alice, "chat_room_users", membership, map[string]any{"permissions": []string{}})
	r.remove(alice, "chat_room_users", membership)
	r.remove(alice, "chat_messages", msg)
	r.remove(alice, "chat_rooms", room)
	for _, from := range []string{since, r.head(alice)} {
		if events, _ := r.syncAll(mallory, from); len(events) != 0 {
			t.Fatalf("mallory got %v", eventTypes(events))
		}
	}
}

// TestSyncReset: cursors this database cannot serve answer reset with the
// current cursor and no events.
func TestSyncReset(t *testing.T) {
	r := newRig(t, chatmodule.Config{})
	alice, bob := r.NewUser("alice"), r.NewUser("bob")
	room := r.createRoom(alice, "group", "g")
	r.addMember(alice, room, bob, nil)
	old := r.head(bob)
	for i := range 3 {
		r.post(alice, room, fmt.Sprint("message ", i))
	}
	head := r.head(bob)
	epoch, _, _ := strings.Cut(head, ".")

	other := newRig(t, chatmodule.Config{})
	otherUser := other.NewUser("zoe")
	otherRoom := other.createRoom(otherUser, "group", "elsewhere")
	other.post(otherUser, otherRoom, "hello")
	foreign := other.head(otherUser)

	tests := []struct{ name, since string }{
		{"another database", foreign},
		{"unknown epoch", "zzzzzzzzzzzz.1"},
		{"beyond what its epoch wrote", epoch + "." + strconv.FormatInt(cursorSeq(t, head)+100, 10)},
		{"garbage", "garbage"},
		{"no seq", epoch + "."},
		{"negative seq", epoch + ".-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			answer := r.syncPage(bob, tt.since, 0)
			if !answer.Reset || len(answer.Events) != 0 || answer.Cursor != head {
				t.Fatalf("got %+v, want reset with cursor %s", answer, head)
			}
		})
	}

	t.Run("pruned", func(t *testing.T) {
		if answer := r.syncPage(bob, old, 0); answer.Reset || len(answer.Events) != 3 {
			t.Fatalf("before pruning: %+v", answer)
		}
		// The events up to the third message are older than the retention.
		cut := cursorSeq(t, head) - 1
		if _, err := r.App.NonconcurrentDB().NewQuery("UPDATE _pbchat_events SET created = 0 WHERE seq <= {:cut}").
			Bind(dbx.Params{"cut": cut}).Execute(); err != nil {
			t.Fatal(err)
		}
		runJob(t, r.App, hooks.EventLogPruneJob)
		if n := r.logRows(); n != 1 {
			t.Fatalf("%d rows left after pruning, want 1", n)
		}
		answer := r.syncPage(bob, old, 0)
		if !answer.Reset || len(answer.Events) != 0 || answer.Cursor != head {
			t.Fatalf("pruned cursor: %+v", answer)
		}
		// The cursor right at the horizon still works: nothing after it is gone.
		atHorizon := epoch + "." + strconv.FormatInt(cut, 10)
		if answer := r.syncPage(bob, atHorizon, 0); answer.Reset || len(answer.Events) != 1 {
			t.Fatalf("cursor at the horizon: %+v", answer)
		}

		// Everything old: the newest row stays, so no seq is handed out twice.
		if _, err := r.App.NonconcurrentDB().NewQuery("UPDATE _pbchat_events SET created = 0").Execute(); err != nil {
			t.Fatal(err)
		}
		runJob(t, r.App, hooks.EventLogPruneJob)
		if n := r.logRows(); n != 1 {
			t.Fatalf("%d rows left after pruning everything old, want 1", n)
		}
		r.post(alice, room, "after the pruning")
		answer = r.syncPage(bob, head, 0)
		if answer.Reset || len(answer.Events) != 1 || cursorSeq(t, answer.Events[0].Cursor) != cursorSeq(t, head)+1 {
			t.Fatalf("after pruning everything old: %+v (head was %s)", answer, head)
		}
	})
}

func runJob(t *testing.T, app core.App, id string) {
	t.Helper()
	for _, job := range app.Cron().Jobs() {
		if job.Id() == id {
			job.Run()
			return
		}
	}
	t.Fatalf("no %q cron job", id)
}

// TestSyncLimitAndMore: pages of limit events, more while events wait; bad
// values answer 400 naming the parameter.
func TestSyncLimitAndMore(t *testing.T) {
	r := newRig(t, chatmodule.Config{})
	alice, bob := r.NewUser("alice"), r.NewUser("bob")
	room := r.createRoom(alice, "group", "g")
	r.addMember(alice, room, bob, nil)
	since := r.head(bob)
	var want []string
	for i := range 25 {
		want = append(want, "message.created "+r.post(alice, room, fmt.Sprint("m", i)))
	}

	var got []string
	cursor := since
	for _, wantLen := range []int{10, 10, 5} {
		answer := r.syncPage(bob, cursor, 10)
		if len(answer.Events) != wantLen || answer.More != (wantLen == 10) {
			t.Fatalf("page from %s: %d events, more %v", cursor, len(answer.Events), answer.More)
		}
		if answer.More && answer.Cursor != answer.Events[len(answer.Events)-1].Cursor {
			t.Fatalf("cursor %s, want the last event's %s", answer.Cursor, answer.Events[len(answer.Events)-1].Cursor)
		}
		got = append(got, eventTypes(answer.Events)...)
		cursor = answer.Cursor
	}
	if !slices.Equal(got, want) {
		t.Fatalf("pages: %v\nwant %v", got, want)
	}
	if answer := r.syncPage(bob, since, 0); len(answer.Events) != 25 || answer.More {
		t.Fatalf("default limit: %d events, more %v", len(answer.Events), answer.More)
	}

	for _, bad := range []struct{ query, field string }{
		{"limit=0", "limit"},
		{"limit=-1", "limit"},
		{"limit=1001", "limit"},
		{"limit=ten", "limit"},
		{"since=" + strings.Repeat("x", 200), "since"},
	} {
		res := r.Do(bob, http.MethodGet, "/api/chat/sync?"+bad.query, nil)
		if res.Status != http.StatusBadRequest {
			t.Fatalf("%s: %d %s", bad.query, res.Status, res)
		}
		rigExpectField(t, res, bad.field)
	}
	if res := r.Do(nil, http.MethodGet, "/api/chat/sync", nil); res.Status != http.StatusUnauthorized {
		t.Fatalf("anonymous: %d %s", res.Status, res)
	}
}

// TestSyncEveryWriter: the batch API, the dashboard (a superuser) and Go
// code are logged like the records API.
func TestSyncEveryWriter(t *testing.T) {
	r := newRig(t, chatmodule.Config{})
	alice, bob := r.NewUser("alice"), r.NewUser("bob")
	since := r.head(bob)

	roomID := "syncbatchroom01"
	r.expect(r.Do(alice, http.MethodPost, "/api/batch", rigBatch(
		rigOp("chat_rooms", map[string]any{"id": roomID, "type": "group", "name": "batch"}),
		rigOp("chat_room_users", map[string]any{"room": roomID, "user": bob.ID()}),
		rigOp("chat_messages", map[string]any{"room": roomID, "text": "from a batch"}),
	)), http.StatusOK, "batch")
	var fromBatch []string
	if err := r.App.DB().Select("id").From("chat_messages").Where(dbx.HashExp{"room": roomID, "system": ""}).Column(&fromBatch); err != nil || len(fromBatch) != 1 {
		t.Fatalf("batch message: %v %v", fromBatch, err)
	}

	admin := r.Superuser()
	res := r.Do(admin, http.MethodPost, "/api/collections/chat_messages/records", map[string]any{"room": roomID, "user": alice.ID(), "text": "from the dashboard"})
	r.expect(res, http.StatusOK, "superuser post")
	fromDashboard := res.Str("id")

	messages, err := r.App.FindCollectionByNameOrId("chat_messages")
	if err != nil {
		t.Fatal(err)
	}
	record := core.NewRecord(messages)
	record.Set("room", roomID)
	record.Set("user", alice.ID())
	record.Set("text", "from Go")
	if err := r.App.Save(record); err != nil {
		t.Fatal(err)
	}
	record, err = r.App.FindRecordById("chat_messages", record.Id)
	if err != nil {
		t.Fatal(err)
	}
	record.Set("text", "from Go, edited")
	if err := r.App.Save(record); err != nil {
		t.Fatal(err)
	}

	events, _ := r.syncAll(bob, since)
	want := []string{
		"member.joined " + r.membership(roomID, bob).Id,
		"message.created " + fromBatch[0],
		"message.created " + fromDashboard,
		"message.created " + record.Id,
	}
	if got := eventTypes(events); !slices.Equal(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
	if events[3].Record["text"] != "from Go, edited" {
		t.Fatalf("Go message: %v", events[3].Record)
	}

	// Go deletes too.
	since = r.head(bob)
	if err := r.App.Delete(record); err != nil {
		t.Fatal(err)
	}
	if events, _ := r.syncAll(bob, since); !slices.Equal(eventTypes(events), []string{"message.deleted " + record.Id}) {
		t.Fatalf("after a Go delete: %v", eventTypes(events))
	}
}

// TestSyncRolledBackWriteLeavesNoRow: a refused batch and a failing Go
// transaction write nothing to the log, and nobody hears of them.
func TestSyncRolledBackWriteLeavesNoRow(t *testing.T) {
	r := newRig(t, chatmodule.Config{})
	alice, bob := r.NewUser("alice"), r.NewUser("bob")
	room := r.createRoom(alice, "group", "g")
	r.addMember(alice, room, bob, nil)
	since := r.head(bob)
	rows := r.logRows()
	sse := r.Connect(bob)
	if res := sse.Subscribe("chat_messages/*", "chat/rooms/"+room); res.Status != http.StatusNoContent {
		t.Fatalf("subscribe: %d %s", res.Status, res)
	}

	res := r.Do(alice, http.MethodPost, "/api/batch", rigBatch(
		rigOp("chat_messages", map[string]any{"room": room, "text": "rolled back"}),
		rigOp("chat_rooms", map[string]any{"type": "private_messages"}), // refused
	))
	if res.Status == http.StatusOK {
		t.Fatalf("the batch went through: %s", res)
	}
	err := r.App.RunInTransaction(func(tx core.App) error {
		messages, err := tx.FindCollectionByNameOrId("chat_messages")
		if err != nil {
			return err
		}
		record := core.NewRecord(messages)
		record.Set("room", room)
		record.Set("user", alice.ID())
		record.Set("text", "also rolled back")
		if err := tx.Save(record); err != nil {
			return err
		}
		return fmt.Errorf("changed my mind")
	})
	if err == nil || !strings.Contains(err.Error(), "changed my mind") {
		t.Fatalf("transaction: %v", err)
	}
	if n := r.logRows(); n != rows {
		t.Fatalf("log rows %d → %d after rolled back writes", rows, n)
	}
	sse.Quiet(t, 300*time.Millisecond)
	if events, _ := r.syncAll(bob, since); len(events) != 0 {
		t.Fatalf("bob got %v", eventTypes(events))
	}

	// What is written next has the cursor right after the last one.
	msg := r.post(alice, room, "kept")
	events, _ := r.syncAll(bob, since)
	if len(events) != 1 || events[0].id() != msg || cursorSeq(t, events[0].Cursor) != cursorSeq(t, since)+1 {
		t.Fatalf("after the rollbacks: %v (since %s)", events, since)
	}
}

// TestSyncCursorOnRealtimeEvents: every realtime event pbchat delivers for a
// logged change carries the cursor that sync gives the same change, on room
// topics and stock subscriptions alike.
func TestSyncCursorOnRealtimeEvents(t *testing.T) {
	r := newRig(t, chatmodule.Config{})
	alice, bob := r.NewUser("alice"), r.NewUser("bob")
	room := r.createRoom(alice, "group", "g")
	r.addMember(alice, room, bob, nil)
	since := r.head(bob)
	sse := r.Connect(bob)
	if res := sse.Subscribe("chat_messages/*", "chat_message_reactions/*", "chat/rooms/"+room); res.Status != http.StatusNoContent {
		t.Fatalf("subscribe: %d %s", res.Status, res)
	}

	msg := r.post(alice, room, "hello")
	reaction := r.react(alice, msg, "👍")
	r.patch(alice, "chat_messages", msg, map[string]any{"text": "hello!"})
	events, _ := r.syncAll(bob, since)
	logged := map[string]string{} // type + id → cursor
	for _, ev := range events {
		logged[ev.String()] = ev.Cursor
	}
	// Sync collapses the message's create and edit; the realtime events
	// are two, the edit's cursor is sync's.
	wantTopic := map[string]bool{"message.created " + msg: false, "reaction.created " + reaction: false, "message.updated " + msg: false}
	wantStock := map[string]bool{"create " + msg: false, "create " + reaction: false, "update " + msg: false}
	var cursors []int64
	deadline := time.After(wait)
	for slices.Contains(mapValues(wantTopic), false) || slices.Contains(mapValues(wantStock), false) {
		select {
		case ev := <-sse.Events:
			c, _ := ev.Data["cursor"].(string)
			if c == "" {
				t.Fatalf("%s event without a cursor: %v", ev.Name, ev.Data)
			}
			if ev.Type() != "" {
				wantTopic[ev.Type()+" "+ev.RecordID()] = true
			} else {
				wantStock[ev.Action()+" "+ev.RecordID()] = true
			}
			cursors = append(cursors, cursorSeq(t, c))
			if ev.Type() == "message.updated" && c != logged["message.created "+msg] {
				t.Fatalf("message.updated cursor %s, sync's %s", c, logged["message.created "+msg])
			}
			if ev.Type() == "reaction.created" && c != logged["reaction.created "+reaction] {
				t.Fatalf("reaction.created cursor %s, sync's %s", c, logged["reaction.created "+reaction])
			}
		case <-deadline:
			t.Fatalf("missing events: topic %v stock %v", wantTopic, wantStock)
		}
	}
	if slices.Max(cursors) != cursorSeq(t, events[len(events)-1].Cursor) {
		t.Fatalf("realtime cursors %v, sync's last %s", cursors, events[len(events)-1].Cursor)
	}
}

func mapValues[K comparable, V any](m map[K]V) []V {
	out := make([]V, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// TestSyncRestartAndRestoredBackup runs the real binary: a cursor survives
// a crash and a restart (the new process writes in an epoch of its own), and
// after a backup is restored a cursor from after the backup answers reset
// while one from before it still serves.
func TestSyncRestartAndRestoredBackup(t *testing.T) {
	bin, dir, server, c := startDemoPBChat(t)
	super := c.superuserToken(t)
	alice := c.must(t, "", http.MethodPost, "/api/collections/users/auth-with-password",
		map[string]any{"identity": "alice@example.com", "password": chatmodule.DemoPassword}, http.StatusOK).Str("token")
	rooms := c.listAll(t, super, "chat_rooms", "name = 'Weekend trip'")
	if len(rooms) != 1 {
		t.Fatalf("demo room: %v", rooms)
	}
	room := rooms[0]["id"].(string)
	sync := func(t *testing.T, c *pbClient, since string) syncAnswer {
		t.Helper()
		res := c.must(t, alice, http.MethodGet, "/api/chat/sync?since="+url.QueryEscape(since), nil, http.StatusOK)
		var answer syncAnswer
		rigDecode(t, res.Body, &answer)
		return answer
	}
	post := func(t *testing.T, c *pbClient, text string) (id, cursor string) {
		t.Helper()
		before := sync(t, c, "").Cursor
		id = c.must(t, alice, http.MethodPost, "/api/collections/chat_messages/records", map[string]any{"room": room, "text": text}, http.StatusOK).Str("id")
		answer := sync(t, c, before)
		if len(answer.Events) != 1 || answer.Events[0].id() != id {
			t.Fatalf("sync after posting %q: %+v", text, answer)
		}
		return id, answer.Cursor
	}
	epochOf := func(cursor string) string { e, _, _ := strings.Cut(cursor, "."); return e }

	_, backedUp := post(t, c, "in the backup")
	const backup = "pbchat_sync.zip"
	c.must(t, super, http.MethodPost, "/api/backups", map[string]any{"name": backup}, http.StatusNoContent)
	lost, afterBackup := post(t, c, "after the backup")

	// A crash and a restart: old cursors serve, the new process has its own epoch.
	server.kill()
	server = startPBChat(t, bin, dir)
	c = newPBClient(server.URL)
	if answer := sync(t, c, backedUp); answer.Reset || len(answer.Events) != 1 || answer.Events[0].id() != lost {
		t.Fatalf("after a restart, from before the backup: %+v", answer)
	}
	_, restarted := post(t, c, "after the restart")
	if epochOf(restarted) == epochOf(afterBackup) {
		t.Fatalf("the restarted process writes in the old epoch: %s, %s", afterBackup, restarted)
	}
	if answer := sync(t, c, afterBackup); answer.Reset || len(answer.Events) != 1 {
		t.Fatalf("after a restart, across epochs: %+v", answer)
	}

	// Restored in place (PocketBase swaps pb_data and re-executes itself).
	super = c.superuserToken(t)
	c.must(t, super, http.MethodPost, "/api/backups/"+backup+"/restore", nil, http.StatusNoContent)
	deadline := time.Now().Add(60 * time.Second)
	for {
		res, err := c.do(t.Context(), super, http.MethodGet, "/api/collections/chat_messages/records/"+lost, nil)
		if err == nil && res.Status == http.StatusNotFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("restore not done after 60s; log:\n%s", server.log())
		}
		time.Sleep(100 * time.Millisecond) // polling for the restart, not an assertion
	}
	for _, since := range []string{afterBackup, restarted} {
		if answer := sync(t, c, since); !answer.Reset || len(answer.Events) != 0 {
			t.Fatalf("restored backup, cursor %s from after it: %+v", since, answer)
		}
	}
	if answer := sync(t, c, backedUp); answer.Reset || len(answer.Events) != 0 {
		t.Fatalf("restored backup, cursor from before it: %+v", answer)
	}
	kept, _ := post(t, c, "after the restore")
	if answer := sync(t, c, backedUp); answer.Reset || len(answer.Events) != 1 || answer.Events[0].id() != kept {
		t.Fatalf("restored backup, then a post: %+v", answer)
	}
}
