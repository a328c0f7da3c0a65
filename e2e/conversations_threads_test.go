package e2e

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pocketbase/dbx"
	validation "github.com/pocketbase/ozzo-validation/v4"
	"github.com/pocketbase/pocketbase/core"

	"github.com/pbchat/pbchat/internal/chattest"
)

// postWith posts a message as user with extra fields and returns the answer.
func (f *realtimeFixture) postWith(user *chattest.User, room, text string, extra map[string]any) *chattest.Response {
	body := map[string]any{"room": room, "text": text}
	for k, v := range extra {
		body[k] = v
	}
	return f.env.Do(user, http.MethodPost, "/api/collections/chat_messages/records", body)
}

// expectField fails unless res is a 400 whose data names field.
func expectField(t *testing.T, res *chattest.Response, field, what string) {
	t.Helper()
	if res.Status != http.StatusBadRequest {
		t.Fatalf("%s: want 400 naming %s, got %d %s", what, field, res.Status, res)
	}
	data, _ := res.JSON()["data"].(map[string]any)
	if _, ok := data[field]; !ok {
		t.Fatalf("%s: 400 does not name %s: %s", what, field, res)
	}
}

func (f *realtimeFixture) message(t *testing.T, id string) map[string]any {
	t.Helper()
	res := f.env.Do(f.alice, http.MethodGet, "/api/collections/chat_messages/records/"+id, nil)
	if res.Status != http.StatusOK {
		t.Fatalf("view %s: %d %s", id, res.Status, res)
	}
	return res.JSON()
}

func TestConversationsReplies(t *testing.T) {
	f := newRealtimeFixture(t)
	parent := f.post(t, f.alice, f.group, "parent")

	res := f.postWith(f.bob, f.group, "a reply", map[string]any{"reply_to": parent, "reply_to_id": "forged", "thread_count": 7})
	if res.Status != http.StatusOK {
		t.Fatalf("reply: %d %s", res.Status, res)
	}
	reply := res.Str("id")
	body := res.JSON()
	if body["reply_to"] != parent || body["reply_to_id"] != parent || body["thread_count"] != 0.0 {
		t.Fatalf("reply fields: %v", body)
	}

	// The parent comes with expand; replies and mentions filter as plain fields.
	if res := f.env.Do(f.alice, http.MethodGet, "/api/collections/chat_messages/records/"+reply+"?expand=reply_to", nil); res.Status != http.StatusOK ||
		res.JSON()["expand"].(map[string]any)["reply_to"].(map[string]any)["text"] != "parent" {
		t.Fatalf("expand reply_to: %d %s", res.Status, res)
	}
	if items := f.env.Do(f.alice, http.MethodGet, "/api/collections/chat_messages/records?filter="+urlFilter("reply_to = '%s'", parent), nil).Items(); len(items) != 1 || items[0]["id"] != reply {
		t.Fatalf("filter reply_to: %v", items)
	}

	// A parent in another room, or none, is refused naming reply_to.
	elsewhere := f.post(t, f.carol, f.carolsRoom, "carol's")
	expectField(t, f.postWith(f.alice, f.group, "x", map[string]any{"reply_to": elsewhere}), "reply_to", "parent in another room")
	expectField(t, f.postWith(f.alice, f.group, "x", map[string]any{"reply_to": "nosuchmessage00"}), "reply_to", "missing parent")

	// reply_to is the reply's for good.
	other := f.post(t, f.alice, f.group, "other")
	expectField(t, f.env.Do(f.bob, http.MethodPatch, "/api/collections/chat_messages/records/"+reply, map[string]any{"reply_to": other}), "reply_to", "reply_to changed")

	// The reply outlives its parent: reply_to empties, reply_to_id stays.
	if res := f.env.Do(f.alice, http.MethodDelete, "/api/collections/chat_messages/records/"+parent, nil); res.Status != http.StatusNoContent {
		t.Fatalf("delete parent: %d %s", res.Status, res)
	}
	got := f.message(t, reply)
	if got["reply_to"] != "" || got["reply_to_id"] != parent {
		t.Fatalf("after the parent's delete: reply_to %q, reply_to_id %q", got["reply_to"], got["reply_to_id"])
	}
	// And stays editable.
	if res := f.env.Do(f.bob, http.MethodPatch, "/api/collections/chat_messages/records/"+reply, map[string]any{"text": "edited"}); res.Status != http.StatusOK || res.Str("reply_to_id") != parent {
		t.Fatalf("edit an orphaned reply: %d %s", res.Status, res)
	}
}

func TestConversationsThreads(t *testing.T) {
	inTopologies(t, func(t *testing.T, f *realtimeFixture) {
		alice, topic := f.connect(f.alice), "chat/rooms/"+f.group
		if res := alice.Subscribe(topic); res.Status != http.StatusNoContent {
			t.Fatalf("subscribe: %d %s", res.Status, res)
		}
		root := f.post(t, f.alice, f.group, "root")
		alice.Expect(t, topic, byID(root), wait)

		res := f.postWith(f.bob, f.group, "in the thread", map[string]any{"thread": root})
		if res.Status != http.StatusOK || res.Str("thread") != root {
			t.Fatalf("thread reply: %d %s", res.Status, res)
		}
		first, firstAt := res.Str("id"), res.Str("created")

		// The root's new count (message.updated, in the reply's transaction), then the reply.
		updated, _ := alice.Next(wait)
		if updated.Type() != "message.updated" || updated.RecordID() != root ||
			updated.Record()["thread_count"] != 1.0 || updated.Record()["thread_last_reply_at"] != firstAt {
			t.Fatalf("root event: %v", updated.Data)
		}
		if created, _ := alice.Next(wait); created.Type() != "message.created" || created.RecordID() != first {
			t.Fatalf("reply event: %v", created.Data)
		} else if cursorSeq(t, created.Data["cursor"].(string)) <= cursorSeq(t, updated.Data["cursor"].(string)) {
			t.Fatalf("cursors out of order: root %v, reply %v", updated.Data["cursor"], created.Data["cursor"])
		}

		time.Sleep(2 * time.Millisecond)
		second := f.postWith(f.alice, f.group, "another", map[string]any{"thread": root}).Str("id")
		replies := f.env.Do(f.bob, http.MethodGet, "/api/collections/chat_messages/records?sort=created&filter="+urlFilter("thread = '%s'", root), nil).Items()
		if len(replies) != 2 || replies[0]["id"] != first || replies[1]["id"] != second {
			t.Fatalf("the thread's replies: %v", replies)
		}
		got := f.message(t, root)
		if got["thread_count"] != 2.0 || got["thread_last_reply_at"] == firstAt || got["thread"] != "" {
			t.Fatalf("root after two replies: %v", got)
		}

		// A thread's root is a root of the same room.
		expectField(t, f.postWith(f.alice, f.group, "x", map[string]any{"thread": first}), "thread", "nested thread")
		elsewhere := f.post(t, f.carol, f.carolsRoom, "carol's")
		expectField(t, f.postWith(f.alice, f.group, "x", map[string]any{"thread": elsewhere}), "thread", "root in another room")
		// thread is fixed, and the counts are the server's.
		other := f.post(t, f.alice, f.group, "other")
		expectField(t, f.env.Do(f.alice, http.MethodPatch, "/api/collections/chat_messages/records/"+second, map[string]any{"thread": other}), "thread", "thread changed")
		expectField(t, f.env.Do(f.alice, http.MethodPatch, "/api/collections/chat_messages/records/"+other, map[string]any{"thread": root}), "thread", "a root moved into a thread")
		if res := f.env.Do(f.alice, http.MethodPatch, "/api/collections/chat_messages/records/"+root, map[string]any{"thread_count": 50, "thread_last_reply_at": "2000-01-01 00:00:00.000Z"}); res.JSON()["thread_count"] != 2.0 {
			t.Fatalf("counts set by a client: %d %s", res.Status, res)
		}
		admin := f.env.Superuser()
		if res := f.env.Do(admin, http.MethodPatch, "/api/collections/chat_messages/records/"+root, map[string]any{"thread_count": 50}); res.JSON()["thread_count"] != 2.0 {
			t.Fatalf("counts set by a superuser: %d %s", res.Status, res)
		}

		// A deleted reply leaves the count.
		if res := f.env.Do(f.alice, http.MethodDelete, "/api/collections/chat_messages/records/"+second, nil); res.Status != http.StatusNoContent {
			t.Fatalf("delete reply: %d %s", res.Status, res)
		}
		updated = alice.Expect(t, topic, func(ev chattest.Event) bool {
			return ev.Type() == "message.updated" && ev.RecordID() == root && ev.Record()["thread_count"] == 1.0
		}, wait)
		if updated.Record()["thread_last_reply_at"] != firstAt {
			t.Fatalf("last reply after delete: %v", updated.Record())
		}

		// The root's replies go with it.
		if res := f.env.Do(f.alice, http.MethodDelete, "/api/collections/chat_messages/records/"+root, nil); res.Status != http.StatusNoContent {
			t.Fatalf("delete root: %d %s", res.Status, res)
		}
		if n := f.env.Count("chat_messages", "thread = {:root} || id = {:root}", dbx.Params{"root": root}); n != 0 {
			t.Fatalf("%d messages of the deleted thread remain", n)
		}
	})
}

// Sync carries the new fields and the root's count change.
func TestConversationsThreadsSync(t *testing.T) {
	f := newRealtimeFixture(t)
	r := &rig{Env: f.env, t: t}
	root := f.post(t, f.alice, f.group, "root")
	since := r.head(f.bob) // the root's creation is behind: its update comes as one
	reply := f.postWith(f.alice, f.group, "@bob", map[string]any{"thread": root, "reply_to": root, "mentions": []string{f.bob.ID()}}).Str("id")
	events, _ := r.syncAll(f.bob, since)
	var created, rootUpdated bool
	for _, ev := range events {
		switch {
		case ev.Type == "message.created" && ev.id() == reply:
			created = ev.Record["thread"] == root && ev.Record["reply_to_id"] == root && fmt.Sprint(ev.Record["mentions"]) == fmt.Sprint([]any{f.bob.ID()})
		case ev.Type == "message.updated" && ev.id() == root:
			rootUpdated = ev.Record["thread_count"] == 1.0
		}
	}
	if !created || !rootUpdated {
		t.Fatalf("sync: reply created with fields %v, root updated %v: %v", created, rootUpdated, events)
	}
}

func TestConversationsMentions(t *testing.T) {
	f := newRealtimeFixture(t)
	mentionsOf := func(user *chattest.User) (int, map[string]any) {
		t.Helper()
		res := f.env.Do(user, http.MethodGet, "/api/chat/unread", nil)
		m, _ := res.JSON()["mentions"].(map[string]any)
		if res.Status != http.StatusOK || m == nil {
			t.Fatalf("unread: %d %s", res.Status, res)
		}
		total, _ := m["total"].(float64)
		rooms, _ := m["rooms"].(map[string]any)
		return int(total), rooms
	}
	overviewMentions := func(user *chattest.User, room string) float64 {
		t.Helper()
		for _, item := range f.env.Do(user, http.MethodGet, "/api/chat/rooms", nil).Items() {
			if item["room"].(map[string]any)["id"] == room {
				return item["unread_mentions"].(float64)
			}
		}
		t.Fatalf("room %s not in the overview", room)
		return 0
	}

	// A non-member is refused naming mentions; members are fine.
	expectField(t, f.postWith(f.alice, f.group, "@carol", map[string]any{"mentions": []string{f.carol.ID()}}), "mentions", "mention of a non-member")
	res := f.postWith(f.alice, f.group, "@bob", map[string]any{"mentions": []string{f.bob.ID()}})
	if res.Status != http.StatusOK {
		t.Fatalf("mention: %d %s", res.Status, res)
	}
	msg := res.Str("id")
	f.post(t, f.alice, f.group, "no mention")
	f.postWith(f.bob, f.group, "@me", map[string]any{"mentions": []string{f.bob.ID()}}) // own: never unread

	if total, rooms := mentionsOf(f.bob); total != 1 || rooms[f.group] != 1.0 {
		t.Fatalf("bob's mentions: %d %v", total, rooms)
	}
	if n := overviewMentions(f.bob, f.group); n != 1 {
		t.Fatalf("overview unread_mentions = %v", n)
	}
	if total, _ := mentionsOf(f.alice); total != 0 {
		t.Fatalf("alice's mentions: %d", total)
	}

	// Muted: out of the unread total, still in the mention count.
	membership := f.env.Do(f.bob, http.MethodGet, "/api/collections/chat_room_users/records?filter="+urlFilter("room='%s' && user='%s'", f.group, f.bob.ID()), nil).Items()[0]["id"].(string)
	if res := f.env.Do(f.bob, http.MethodPatch, "/api/collections/chat_room_users/records/"+membership, map[string]any{"muted": true}); res.Status != http.StatusOK {
		t.Fatalf("mute: %d %s", res.Status, res)
	}
	if got := unread(t, f.env, f.bob); got.Total != 0 {
		t.Fatalf("muted unread total: %+v", got)
	}
	if total, _ := mentionsOf(f.bob); total != 1 {
		t.Fatalf("muted mentions: %d", total)
	}

	// Edits: adding a non-member is refused; removing the mention uncounts it.
	expectField(t, f.env.Do(f.alice, http.MethodPatch, "/api/collections/chat_messages/records/"+msg, map[string]any{"mentions": []string{f.bob.ID(), f.carol.ID()}}), "mentions", "edit adds a non-member")
	if res := f.env.Do(f.alice, http.MethodPatch, "/api/collections/chat_messages/records/"+msg, map[string]any{"mentions": []string{}}); res.Status != http.StatusOK {
		t.Fatalf("remove mention: %d %s", res.Status, res)
	}
	if total, _ := mentionsOf(f.bob); total != 0 {
		t.Fatalf("mentions after removal: %d", total)
	}
	if res := f.env.Do(f.alice, http.MethodPatch, "/api/collections/chat_messages/records/"+msg, map[string]any{"mentions": []string{f.bob.ID()}}); res.Status != http.StatusOK {
		t.Fatalf("mention again: %d %s", res.Status, res)
	}
	if total, _ := mentionsOf(f.bob); total != 1 {
		t.Fatalf("mentions after adding back: %d", total)
	}

	// A mention of someone who left stays on the message, and the message stays editable.
	carolInGroup := f.addMember(t, f.alice, f.group, f.carol)
	withCarol := f.postWith(f.alice, f.group, "@carol", map[string]any{"mentions": []string{f.carol.ID()}}).Str("id")
	if res := f.env.Do(f.alice, http.MethodDelete, "/api/collections/chat_room_users/records/"+carolInGroup, nil); res.Status != http.StatusNoContent {
		t.Fatalf("remove carol: %d %s", res.Status, res)
	}
	if res := f.env.Do(f.alice, http.MethodPatch, "/api/collections/chat_messages/records/"+withCarol, map[string]any{"text": "@carol (gone)", "mentions": []string{f.carol.ID(), f.bob.ID()}}); res.Status != http.StatusOK {
		t.Fatalf("edit a message mentioning a former member: %d %s", res.Status, res)
	}

	// read, and delete, clear it.
	if res := f.env.Do(f.bob, http.MethodPost, "/api/chat/rooms/"+f.group+"/read", nil); res.Status != http.StatusOK {
		t.Fatalf("read: %d", res.Status)
	}
	if total, _ := mentionsOf(f.bob); total != 0 {
		t.Fatalf("mentions after read: %d", total)
	}
	time.Sleep(2 * time.Millisecond)
	late := f.postWith(f.alice, f.group, "@bob later", map[string]any{"mentions": []string{f.bob.ID()}}).Str("id")
	if total, _ := mentionsOf(f.bob); total != 1 {
		t.Fatalf("a new mention: %d", total)
	}
	if res := f.env.Do(f.alice, http.MethodDelete, "/api/collections/chat_messages/records/"+late, nil); res.Status != http.StatusNoContent {
		t.Fatalf("delete: %d", res.Status)
	}
	if total, _ := mentionsOf(f.bob); total != 0 {
		t.Fatalf("mentions after the message's delete: %d", total)
	}

	// At most 50 users.
	many := make([]string, 51)
	for i := range many {
		many[i] = fmt.Sprintf("user%010d", i)
	}
	expectField(t, f.postWith(f.alice, f.group, "everyone", map[string]any{"mentions": many}), "mentions", "51 mentions")
}

func TestConversationsThreadsRoute(t *testing.T) {
	f := newRealtimeFixture(t)
	dave := f.env.NewUser("dave")
	f.addMember(t, f.alice, f.group, dave)
	time.Sleep(2 * time.Millisecond)

	r1 := f.post(t, f.alice, f.group, "first topic")
	r2 := f.post(t, f.alice, f.group, "second topic")
	f.post(t, f.alice, f.group, "a root without replies")
	f.postWith(f.bob, f.group, "bob answers", map[string]any{"thread": r1})
	f.postWith(f.alice, f.group, "@dave see", map[string]any{"thread": r2, "mentions": []string{dave.ID()}})
	time.Sleep(2 * time.Millisecond)
	f.postWith(f.alice, f.group, "alice follows up", map[string]any{"thread": r1})

	type item struct {
		root   string
		unread int
	}
	threadsOf := func(user *chattest.User) []item {
		t.Helper()
		res := f.env.Do(user, http.MethodGet, "/api/chat/threads?room="+f.group, nil)
		if res.Status != http.StatusOK {
			t.Fatalf("threads: %d %s", res.Status, res)
		}
		var out []item
		for _, it := range res.Items() {
			out = append(out, item{it["root"].(map[string]any)["id"].(string), int(it["unread"].(float64))})
		}
		return out
	}
	// Newest reply first; alice wrote both roots.
	if got := threadsOf(f.alice); fmt.Sprint(got) != fmt.Sprint([]item{{r1, 1}, {r2, 0}}) {
		t.Fatalf("alice's threads: %v (want r1 %s with bob's reply unread, then r2 %s)", got, r1, r2)
	}
	// bob posted in r1: alice's follow-up is unread.
	if got := threadsOf(f.bob); fmt.Sprint(got) != fmt.Sprint([]item{{r1, 1}}) {
		t.Fatalf("bob's threads: %v", got)
	}
	// dave was mentioned in r2.
	if got := threadsOf(dave); fmt.Sprint(got) != fmt.Sprint([]item{{r2, 1}}) {
		t.Fatalf("dave's threads: %v", got)
	}
	if res := f.env.Do(dave, http.MethodPost, "/api/chat/rooms/"+f.group+"/read", nil); res.Status != http.StatusOK {
		t.Fatalf("read: %d", res.Status)
	}
	if got := threadsOf(dave); fmt.Sprint(got) != fmt.Sprint([]item{{r2, 0}}) {
		t.Fatalf("dave's threads after read: %v", got)
	}

	// A room the caller is not in is a 404; no room is a 400 naming room.
	if res := f.env.Do(f.carol, http.MethodGet, "/api/chat/threads?room="+f.group, nil); res.Status != http.StatusNotFound {
		t.Fatalf("outsider: want 404, got %d %s", res.Status, res)
	}
	expectField(t, f.env.Do(f.bob, http.MethodGet, "/api/chat/threads", nil), "room", "no room")
	if res := f.env.Do(nil, http.MethodGet, "/api/chat/threads?room="+f.group, nil); res.Status != http.StatusUnauthorized {
		t.Fatalf("anonymous: want 401, got %d", res.Status)
	}

	// One query, on indexes.
	db, ok := f.env.App.ConcurrentDB().(*dbx.DB)
	if !ok {
		t.Fatalf("concurrent db is %T", f.env.App.ConcurrentDB())
	}
	var mu sync.Mutex
	var captured []string
	db.QueryLogFunc = func(_ context.Context, _ time.Duration, q string, _ *sql.Rows, _ error) {
		mu.Lock()
		defer mu.Unlock()
		if strings.Contains(q, "thread_count > 0") {
			captured = append(captured, q)
		}
	}
	threadsOf(f.bob)
	db.QueryLogFunc = nil
	mu.Lock()
	defer mu.Unlock()
	if len(captured) != 1 {
		t.Fatalf("threads ran %d queries: %v", len(captured), captured)
	}
	var plan []planStep
	if err := f.env.App.NonconcurrentDB().NewQuery("EXPLAIN QUERY PLAN " + captured[0]).All(&plan); err != nil {
		t.Fatal(err)
	}
	for _, step := range plan {
		if fields := strings.Fields(step.Detail); len(fields) >= 2 && fields[0] == "SCAN" && !strings.Contains(step.Detail, "USING") {
			t.Errorf("full scan %q in the threads query: %v", step.Detail, plan)
		}
	}
	joined := fmt.Sprint(plan)
	for _, index := range []string{"idx_chat_messages_room_threads", "idx_chat_messages_thread", "_pbchat_mentions_thread_user"} {
		if !strings.Contains(joined, index) {
			t.Errorf("the threads query does not use %s: %v", index, plan)
		}
	}
}

// The invariants hold for the dashboard (a superuser, whom the request hooks
// let through) and for Go code.
func TestConversationsThreadsInvariants(t *testing.T) {
	f := newRealtimeFixture(t)
	admin := f.env.Superuser()
	root := f.post(t, f.alice, f.group, "root")
	reply := f.postWith(f.alice, f.group, "reply", map[string]any{"thread": root}).Str("id")
	elsewhere := f.post(t, f.carol, f.carolsRoom, "carol's")

	cases := []struct {
		name, field string
		fields      map[string]any
	}{
		{"reply to a message of another room", "reply_to", map[string]any{"reply_to": elsewhere}},
		{"thread root in another room", "thread", map[string]any{"thread": elsewhere}},
		{"thread under a thread reply", "thread", map[string]any{"thread": reply}},
		{"mention of a non-member", "mentions", map[string]any{"mentions": []string{f.carol.ID()}}},
	}
	messages, err := f.env.App.FindCollectionByNameOrId("chat_messages")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		body := map[string]any{"room": f.group, "user": f.alice.ID(), "text": c.name}
		for k, v := range c.fields {
			body[k] = v
		}
		expectField(t, f.env.Do(admin, http.MethodPost, "/api/collections/chat_messages/records", body), c.field, c.name+" (dashboard)")

		record := core.NewRecord(messages)
		for k, v := range body {
			record.Set(k, v)
		}
		err := f.env.App.Save(record)
		var invalid validation.Errors
		if !errors.As(err, &invalid) || invalid[c.field] == nil {
			t.Errorf("%s (Go): want a validation error naming %s, got %v", c.name, c.field, err)
		}
	}

	// Go writes count replies and keep the server's fields.
	record := core.NewRecord(messages)
	record.Set("room", f.group)
	record.Set("user", f.bob.ID())
	record.Set("text", "from Go")
	record.Set("thread", root)
	record.Set("thread_count", 9)
	if err := f.env.App.Save(record); err != nil {
		t.Fatal(err)
	}
	saved, err := f.env.App.FindRecordById("chat_messages", root)
	if err != nil {
		t.Fatal(err)
	}
	if saved.GetInt("thread_count") != 2 || saved.GetString("thread_last_reply_at") != record.GetString("created") || record.GetInt("thread_count") != 0 {
		t.Fatalf("root after a Go reply: count %d, last %q (reply created %q, its count %d)",
			saved.GetInt("thread_count"), saved.GetString("thread_last_reply_at"), record.GetString("created"), record.GetInt("thread_count"))
	}
	saved.Set("thread_count", 40)
	if err := f.env.App.Save(saved); err != nil || saved.GetInt("thread_count") != 2 {
		t.Fatalf("a Go write of thread_count: %v, count %d", err, saved.GetInt("thread_count"))
	}

	// A room with threads, replies and mentions goes in one delete.
	f.postWith(f.alice, f.group, "@bob", map[string]any{"thread": root, "reply_to": reply, "mentions": []string{f.bob.ID()}})
	if res := f.env.Do(f.alice, http.MethodDelete, "/api/collections/chat_rooms/records/"+f.group, nil); res.Status != http.StatusNoContent {
		t.Fatalf("delete room: %d %s", res.Status, res)
	}
	var left int
	if err := f.env.App.DB().NewQuery("SELECT count(*) FROM _pbchat_mentions WHERE room = {:room}").Bind(dbx.Params{"room": f.group}).Row(&left); err != nil || left != 0 {
		t.Fatalf("mention rows of a deleted room: %d %v", left, err)
	}
}
