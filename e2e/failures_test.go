package e2e

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/hook"

	"github.com/pbchat/pbchat/chatmodule"
	"github.com/pbchat/pbchat/internal/chat"
	"github.com/pbchat/pbchat/internal/chattest"
)

// No failure hidden or mislabelled: what is gone answers PocketBase's 404,
// a database that fails answers 500 (never the 400 of a caller's mistake),
// a realtime node refuses what it will never serve, and the invariant checks
// read inside the transaction that writes.

// A reaction whose message goes (deleted by another request) between
// PocketBase's rule check and pbchat's permission check: the reaction went
// with its message, so the answer is PocketBase's 404, not an empty 200.
func TestFailuresReactionOfVanishedMessage(t *testing.T) {
	w := newRigWorld(t, chatmodule.Config{})
	w.App.OnRecordDeleteRequest("chat_message_reactions").Bind(&hook.Handler[*core.RecordRequestEvent]{
		Priority: -1, // before pbchat's permission check
		Func: func(e *core.RecordRequestEvent) error {
			message, err := e.App.FindRecordById("chat_messages", e.Record.GetString("message"))
			if err != nil {
				return err
			}
			if err := e.App.Delete(message); err != nil {
				return err
			}
			return e.Next()
		},
	})
	res := w.Do(w.carol, http.MethodDelete, rigReactions+"/"+w.aliceReaction, nil)
	if res.Status != http.StatusNotFound {
		t.Fatalf("deleting a reaction whose message vanished: %d %q, want 404", res.Status, res)
	}
	if n := w.Count("chat_message_reactions", "id = {:id}", dbx.Params{"id": w.aliceReaction}); n != 0 {
		t.Fatalf("the reaction outlived its message")
	}
}

// failingDB breaks one table for the length of a request: renamed away
// (every read of it fails) or with a trigger that aborts its inserts or
// updates. undo restores it.
func failingDB(t *testing.T, app core.App, table, how string) (undo func()) {
	t.Helper()
	exec := func(sql string) {
		t.Helper()
		if _, err := app.NonconcurrentDB().NewQuery(sql).Execute(); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	switch how {
	case "gone":
		exec("ALTER TABLE " + table + " RENAME TO " + table + "_away")
		return func() { exec("ALTER TABLE " + table + "_away RENAME TO " + table) }
	case "INSERT", "UPDATE":
		exec("CREATE TRIGGER pbchat_test_failure BEFORE " + how + " ON " + table +
			" BEGIN SELECT RAISE(ABORT, 'disk I/O error (test)'); END")
		return func() { exec("DROP TRIGGER pbchat_test_failure") }
	}
	t.Fatalf("unknown failure %q", how)
	return nil
}

// A database error is the server's failure: 500, never a 400 that blames the
// caller's input (nor foreign_media), and nothing is written. The same
// requests with a working database but wrong input still answer 400.
func TestFailuresDatabaseErrorsAre500(t *testing.T) {
	w := newRigWorld(t, chatmodule.Config{})
	admin := w.Superuser()
	orphan := w.upload(w.alice)
	bobsUpload := w.upload(w.bob)
	textOnly := w.post(w.alice, w.group, "to attach to")
	get, post := http.MethodGet, http.MethodPost

	tests := []struct {
		name         string
		table, how   string // the failure; "" for none
		actor        *chattest.User
		method, path string
		body         any
		status       int
		field        string // named by a 400
	}{
		{name: "private room: finding it", table: "chat_room_users", how: "gone", actor: w.alice, method: post,
			path: "/api/chat/private", body: map[string]any{"user": w.dave.ID()}, status: 500},
		{name: "private room: creating it", table: "chat_rooms", how: "INSERT", actor: w.alice, method: post,
			path: "/api/chat/private", body: map[string]any{"user": w.dave.ID()}, status: 500},
		{name: "private room: unknown user", actor: w.alice, method: post,
			path: "/api/chat/private", body: map[string]any{"user": "nosuchuser00000"}, status: 400, field: "user"},
		{name: "rooms overview", table: "chat_room_users", how: "gone", actor: w.alice, method: get,
			path: "/api/chat/rooms", status: 500},
		{name: "rooms overview: invalid page", actor: w.alice, method: get,
			path: "/api/chat/rooms?page=0", status: 400, field: "page"},
		{name: "unread counts", table: "chat_messages", how: "gone", actor: w.alice, method: get,
			path: "/api/chat/unread", status: 500},
		{name: "mark read: finding the membership", table: "chat_room_users", how: "gone", actor: w.alice, method: post,
			path: "/api/chat/rooms/" + w.group + "/read", status: 500},
		{name: "mark read: saving", table: "chat_room_users", how: "UPDATE", actor: w.alice, method: post,
			path: "/api/chat/rooms/" + w.group + "/read", status: 500},
		{name: "message with an attachment", table: "chat_media", how: "gone", actor: w.alice, method: post,
			path: rigMessages, body: map[string]any{"room": w.group, "text": "x", "media": []string{orphan}}, status: 500},
		{name: "message with another's upload", actor: w.alice, method: post,
			path: rigMessages, body: map[string]any{"room": w.group, "text": "x", "media": []string{bobsUpload}}, status: 400, field: "media"},
		{name: "attachment link", table: "chat_media", how: "gone", actor: admin, method: post,
			path: rigLinks, body: map[string]any{"message": textOnly, "media": orphan, "sequence": 0}, status: 500},
		{name: "attachment link: another's upload", actor: admin, method: post,
			path: rigLinks, body: map[string]any{"message": textOnly, "media": bobsUpload, "sequence": 0}, status: 400, field: "media"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := w.in(t).snapshot()
			var res *chattest.Response
			if tc.table != "" {
				undo := failingDB(t, w.App, tc.table, tc.how)
				res = w.Do(tc.actor, tc.method, tc.path, tc.body)
				undo()
			} else {
				res = w.Do(tc.actor, tc.method, tc.path, tc.body)
			}
			if tc.field != "" {
				rigExpectField(t, res, tc.field)
			} else if res.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", res.Status, tc.status, res)
			}
			if tc.status == http.StatusInternalServerError && strings.Contains(res.String(), "foreign_media") {
				t.Errorf("a database error reported as foreign_media: %s", res)
			}
			w.in(t).expectSnapshot(before)
		})
	}
}

// Editing a message's text to empty while its last attachment is removed:
// one of the two must be refused, whichever commits first; never a message
// with neither text nor attachment.
func TestFailuresEditRacesLastAttachmentRemoval(t *testing.T) {
	w := newRigWorld(t, chatmodule.Config{RateLimits: chatmodule.RateLimits{Disabled: true}})
	const rounds = 60
	for round := 0; round < rounds; round++ {
		media := w.upload(w.alice)
		message := w.post(w.alice, w.group, "caption", media)
		var edit, unattach *chattest.Response
		var wg sync.WaitGroup
		start := make(chan struct{})
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-start
			edit = w.Do(w.alice, http.MethodPatch, rigMessages+"/"+message, map[string]any{"text": " "})
		}()
		go func() {
			defer wg.Done()
			<-start
			unattach = w.Do(w.alice, http.MethodDelete, rigMedia+"/"+media, nil)
		}()
		close(start)
		wg.Wait()

		record := w.record("chat_messages", message)
		links := len(w.linksOf(message))
		if !chat.HasVisibleText(record.GetString("text")) && links == 0 {
			t.Fatalf("round %d: message %s has neither text nor attachment (edit %d %s; media delete %d %s)",
				round, message, edit.Status, edit, unattach.Status, unattach)
		}
		if (edit.Status == http.StatusOK) == (unattach.Status == http.StatusNoContent) {
			t.Fatalf("round %d: exactly one of the edit (%d %s) and the media delete (%d %s) should succeed",
				round, edit.Status, edit, unattach.Status, unattach)
		}
	}
}

// Text without a visible character counts as empty for the last attachment
// too: a message of " " keeps its only picture.
func TestFailuresInvisibleTextKeepsItsLastPicture(t *testing.T) {
	w := newRigWorld(t, chatmodule.Config{})
	for _, text := range []string{" ", "\u200b", "\t\n"} {
		media := w.upload(w.alice)
		message := w.post(w.alice, w.group, text, media)
		if res := w.Do(w.alice, http.MethodDelete, rigMedia+"/"+media, nil); res.Status != http.StatusBadRequest {
			t.Errorf("text %q: deleting the only picture = %d %s, want 400", text, res.Status, res)
		}
		links := w.linksOf(message)
		if len(links) != 1 {
			t.Fatalf("text %q: %d attachments left, want 1", text, len(links))
		}
		if err := w.App.Delete(links[0]); err == nil {
			t.Errorf("text %q: Go code removed the only picture", text)
		}
		if len(w.linksOf(message)) != 1 {
			t.Errorf("text %q: the message lost its only picture", text)
		}
	}
}

// A realtime node serves room topics and the chat collections; what only
// PocketBase can serve (other collections, a superuser's subscriptions) is
// refused with a 400 naming subscriptions and the writer's /api/realtime,
// not accepted with a 204 and never delivered. Nothing of a refused request
// is installed.
func TestFailuresNodeRefusesWhatOnlyPocketBaseServes(t *testing.T) {
	c := newCluster(t)
	admin := c.env.Superuser()
	node := c.nodes[0].url
	topic := chat.RoomTopicPrefix + c.group
	for _, tc := range []struct {
		name string
		user *chattest.User
		subs []string
	}{
		{"another collection", c.bob, []string{"users/*"}},
		{"another collection beside a room topic", c.bob, []string{topic, "users/" + c.bob.ID()}},
		{"a superuser's chat collection", admin, []string{"chat_messages/*"}},
		{"a guest's other collection", nil, []string{"users/*"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn := c.env.ConnectAt(node, tc.user)
			res := conn.Subscribe(tc.subs...)
			if res.Status != http.StatusBadRequest || !strings.Contains(res.String(), "writer's /api/realtime") {
				t.Fatalf("want 400 naming the writer's /api/realtime, got %d %s", res.Status, res)
			}
			if data, _ := res.JSON()["data"].(map[string]any); data["subscriptions"] == nil {
				t.Fatalf("the 400 should name subscriptions: %s", res)
			}
			if tc.user == c.bob {
				c.post(t, c.alice, c.group, "after a refused subscribe")
				conn.Quiet(t, time.Second)
			}
		})
	}
	// What the node serves is served as before.
	bob := c.env.ConnectAt(node, c.bob)
	if res := bob.Subscribe("PB_CONNECT", topic, "chat_messages/*"); res.Status != http.StatusNoContent {
		t.Fatalf("PB_CONNECT, a room topic and a chat collection on a node: %d %s", res.Status, res)
	}
	id := c.post(t, c.alice, c.group, "served")
	bob.Expect(t, "chat_messages/*", byID(id), wait)
}
