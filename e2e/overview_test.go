package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pocketbase/dbx"

	"github.com/pbchat/pbchat/internal/chattest"
)

type unreadAnswer struct {
	Total int            `json:"total"`
	Rooms map[string]int `json:"rooms"`
}

func unread(t *testing.T, env *chattest.Env, user *chattest.User) unreadAnswer {
	t.Helper()
	res := env.Do(user, http.MethodGet, "/api/chat/unread", nil)
	if res.Status != http.StatusOK {
		t.Fatalf("unread: %d %s", res.Status, res)
	}
	body := res.JSON()
	out := unreadAnswer{Rooms: map[string]int{}}
	out.Total = int(body["total"].(float64))
	for room, n := range body["rooms"].(map[string]any) {
		out.Rooms[room] = int(n.(float64))
	}
	return out
}

func TestUnreadCounts(t *testing.T) {
	f := newRealtimeFixture(t)
	env := f.env
	quiet := f.createRoom(t, f.alice, "group")
	f.addMember(t, f.alice, quiet, f.bob)

	if got := unread(t, env, f.bob); got.Total != 0 || got.Rooms[f.group] != 0 {
		t.Fatalf("before any message: %+v", got)
	}
	f.post(t, f.alice, f.group, "one")
	f.post(t, f.alice, f.group, "two")
	f.post(t, f.bob, f.group, "own messages never count")
	f.post(t, f.alice, quiet, "three")

	got := unread(t, env, f.bob)
	if got.Rooms[f.group] != 2 || got.Rooms[quiet] != 1 || got.Total != 3 {
		t.Fatalf("unread after 3 others' messages: %+v", got)
	}
	if _, listed := got.Rooms[f.carolsRoom]; listed {
		t.Fatalf("a room bob is not in is listed: %+v", got)
	}
	if alice := unread(t, env, f.alice); alice.Rooms[f.group] != 1 {
		t.Fatalf("alice sees bob's one message unread: %+v", alice)
	}

	// Muting keeps the per-room count and leaves the room out of the total.
	membership := env.Do(f.bob, http.MethodGet, "/api/collections/chat_room_users/records?filter="+urlFilter("room='%s' && user='%s'", quiet, f.bob.ID()), nil).Items()[0]["id"].(string)
	if res := env.Do(f.bob, http.MethodPatch, "/api/collections/chat_room_users/records/"+membership, map[string]any{"muted": true}); res.Status != http.StatusOK {
		t.Fatalf("mute: %d %s", res.Status, res)
	}
	if got := unread(t, env, f.bob); got.Rooms[quiet] != 1 || got.Total != 2 {
		t.Fatalf("muted room: %+v", got)
	}

	// read zeroes a room; later messages count again.
	if res := env.Do(f.bob, http.MethodPost, "/api/chat/rooms/"+f.group+"/read", nil); res.Status != http.StatusOK || res.Str("last_seen_at") == "" {
		t.Fatalf("read: %d %s", res.Status, res)
	}
	if got := unread(t, env, f.bob); got.Rooms[f.group] != 0 || got.Total != 0 {
		t.Fatalf("after read: %+v", got)
	}
	time.Sleep(2 * time.Millisecond) // created has millisecond precision
	f.post(t, f.alice, f.group, "four")
	if got := unread(t, env, f.bob); got.Rooms[f.group] != 1 {
		t.Fatalf("after a new message: %+v", got)
	}

	if res := env.Do(f.carol, http.MethodPost, "/api/chat/rooms/"+f.group+"/read", nil); res.Status != http.StatusNotFound {
		t.Fatalf("read by outsider: want 404, got %d", res.Status)
	}
	if res := env.Do(nil, http.MethodGet, "/api/chat/unread", nil); res.Status != http.StatusUnauthorized {
		t.Fatalf("unread anonymous: want 401, got %d", res.Status)
	}
}

func TestUnreadCountsFromJoiningWhenNeverRead(t *testing.T) {
	f := newRealtimeFixture(t)
	f.post(t, f.alice, f.group, "before carol joined")
	time.Sleep(2 * time.Millisecond)
	f.addMember(t, f.alice, f.group, f.carol)
	time.Sleep(2 * time.Millisecond)
	f.post(t, f.alice, f.group, "after carol joined")
	if got := unread(t, f.env, f.carol); got.Rooms[f.group] != 1 {
		t.Fatalf("carol's unread: %+v", got)
	}
}

func TestRoomsOverview(t *testing.T) {
	f := newRealtimeFixture(t)
	env := f.env
	older := f.createRoom(t, f.alice, "group")
	f.addMember(t, f.alice, older, f.bob)
	f.post(t, f.alice, older, "old news")
	time.Sleep(2 * time.Millisecond)
	last := f.post(t, f.alice, f.group, "latest")

	res := env.Do(f.bob, http.MethodGet, "/api/chat/rooms", nil)
	if res.Status != http.StatusOK {
		t.Fatalf("rooms: %d %s", res.Status, res)
	}
	items := res.Items()
	if len(items) != 2 {
		t.Fatalf("bob's rooms: want 2, got %d: %s", len(items), res)
	}
	first := items[0]
	if first["room"].(map[string]any)["id"] != f.group {
		t.Fatalf("newest activity first: got %v", first["room"])
	}
	if lm := first["last_message"].(map[string]any); lm["id"] != last || lm["text"] != "latest" || lm["user"] != f.alice.ID() || lm["created"] == "" {
		t.Fatalf("last_message = %v", lm)
	}
	if first["unread_count"].(float64) != 1 || first["membership"].(map[string]any)["user"] != f.bob.ID() {
		t.Fatalf("item = %v", first)
	}
	if body := res.JSON(); body["totalItems"].(float64) != 2 {
		t.Fatalf("totalItems: %v", body)
	}

	// A room without messages has last_message null; pagination walks every room once.
	empty := f.createRoom(t, f.bob, "channel")
	seen := map[string]bool{}
	for page := 1; page <= 3; page++ {
		p := env.Do(f.bob, http.MethodGet, fmt.Sprintf("/api/chat/rooms?page=%d&perPage=1", page), nil)
		items := p.Items()
		if len(items) != 1 {
			t.Fatalf("page %d: %s", page, p)
		}
		room := items[0]["room"].(map[string]any)["id"].(string)
		seen[room] = true
		if room == empty && items[0]["last_message"] != nil {
			t.Fatalf("empty room's last_message = %v", items[0]["last_message"])
		}
	}
	if len(seen) != 3 {
		t.Fatalf("pages repeated or skipped rooms: %v", seen)
	}
	if p := env.Do(f.bob, http.MethodGet, "/api/chat/rooms?page=4&perPage=1", nil); len(p.Items()) != 0 {
		t.Fatalf("page past the end: %s", p)
	}

	// Carol sees only her own room.
	if items := env.Do(f.carol, http.MethodGet, "/api/chat/rooms", nil).Items(); len(items) != 1 || items[0]["room"].(map[string]any)["id"] != f.carolsRoom {
		t.Fatalf("carol's overview: %v", items)
	}
}

// The overview and unread routes run a fixed number of queries however many
// rooms the caller is in, and none of them scans chat_messages.
func TestOverviewQueriesAreFewAndIndexed(t *testing.T) {
	f := newRealtimeFixture(t)
	env := f.env
	db, ok := env.App.ConcurrentDB().(*dbx.DB)
	if !ok {
		t.Fatalf("concurrent db is %T", env.App.ConcurrentDB())
	}
	var mu sync.Mutex
	var captured []string
	db.QueryLogFunc = func(_ context.Context, _ time.Duration, sql string, _ *sql.Rows, _ error) {
		mu.Lock()
		captured = append(captured, sql)
		mu.Unlock()
	}
	capture := func(path string) []string {
		mu.Lock()
		captured = nil
		mu.Unlock()
		if res := env.Do(f.bob, http.MethodGet, path, nil); res.Status != http.StatusOK {
			t.Fatalf("%s: %d %s", path, res.Status, res)
		}
		mu.Lock()
		defer mu.Unlock()
		var chatQueries []string
		for _, q := range captured {
			if strings.Contains(q, "chat_") {
				chatQueries = append(chatQueries, q)
			}
		}
		return chatQueries
	}

	counts := map[string][]int{}
	for rooms := 1; rooms <= 3; rooms++ {
		if rooms > 1 {
			for i := 0; i < 5; i++ { // 5 more rooms each round
				room := f.createRoom(t, f.alice, "group")
				f.addMember(t, f.alice, room, f.bob)
				f.post(t, f.alice, room, "hi")
				f.postWith(f.alice, room, "@bob", map[string]any{"mentions": []string{f.bob.ID()}})
			}
		}
		for _, path := range []string{"/api/chat/rooms", "/api/chat/unread"} {
			queries := capture(path)
			counts[path] = append(counts[path], len(queries))
			for _, q := range queries {
				assertIndexed(t, env, q)
			}
		}
	}
	t.Logf("chat queries per request for 1, 6, 11 rooms: %v", counts)
	for path, n := range counts {
		if n[0] == 0 {
			t.Fatalf("%s: no query captured", path)
		}
		if n[0] != n[1] || n[1] != n[2] || n[0] > 5 {
			t.Errorf("%s ran %v chat queries for 1, 6 and 11 rooms: want the same small number", path, n)
		}
	}
}

// planStep is one row of EXPLAIN QUERY PLAN.
type planStep struct {
	ID      int    `db:"id"`
	Parent  int    `db:"parent"`
	NotUsed int    `db:"notused"`
	Detail  string `db:"detail"`
}

func assertIndexed(t *testing.T, env *chattest.Env, query string) {
	t.Helper()
	var plan []planStep
	if params := positionalParams(query); params > 0 {
		// A prepared statement's ?1, ?2, …: any value explains the plan.
		plan = explainPositional(t, env, query, params)
	} else if err := env.App.NonconcurrentDB().NewQuery("EXPLAIN QUERY PLAN " + query).All(&plan); err != nil {
		t.Fatalf("explain %s: %v", query, err)
	}
	// The unread count reads only the messages after the member's mark.
	if strings.Contains(query, "x.created") && !slices.ContainsFunc(plan, func(step planStep) bool {
		return strings.Contains(step.Detail, "idx_chat_messages_room_created (room=? AND created>?)")
	}) {
		t.Errorf("unread count is not a range scan of (room, created): %v", plan)
	}
	// The mention count reads only the caller's mentions after the mark.
	if strings.Contains(query, "_pbchat_mentions") && !slices.ContainsFunc(plan, func(step planStep) bool {
		return strings.Contains(step.Detail, "_pbchat_mentions_user_room_created (user=? AND room=? AND created>?)")
	}) {
		t.Errorf("mention count is not a range scan of (user, room, created): %v", plan)
	}
	// The caller's memberships are read from the index alone, not row by row.
	if strings.Contains(query, "FROM chat_room_users") && !slices.ContainsFunc(plan, func(step planStep) bool {
		return strings.Contains(step.Detail, "COVERING INDEX idx_chat_room_users_user_marks (user=?)")
	}) {
		t.Errorf("memberships are not read from idx_chat_room_users_user_marks alone: %v", plan)
	}
	// chat_messages appears as itself or under the aliases x, y and lm; the mentions table as n.
	for _, step := range plan {
		fields := strings.Fields(step.Detail)
		if len(fields) >= 2 && fields[0] == "SCAN" && !strings.Contains(step.Detail, "USING") &&
			slices.Contains([]string{"chat_messages", "x", "y", "lm", "n"}, fields[1]) {
			t.Errorf("full scan of chat_messages %q in\n%s", step.Detail, query)
		}
	}
}

// positionalParams is the highest ?N of query.
func positionalParams(query string) int {
	n := 0
	for _, m := range regexp.MustCompile(`\?(\d+)`).FindAllStringSubmatch(query, -1) {
		if i, err := strconv.Atoi(m[1]); err == nil && i > n {
			n = i
		}
	}
	return n
}

func explainPositional(t *testing.T, env *chattest.Env, query string, params int) []planStep {
	t.Helper()
	db, ok := env.App.NonconcurrentDB().(*dbx.DB)
	if !ok {
		t.Fatalf("nonconcurrent db is %T", env.App.NonconcurrentDB())
	}
	args := make([]any, params)
	for i := range args {
		args[i] = 1
	}
	rows, err := db.DB().Query("EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		t.Fatalf("explain %s: %v", query, err)
	}
	defer rows.Close()
	var plan []planStep
	for rows.Next() {
		var step planStep
		if err := rows.Scan(&step.ID, &step.Parent, &step.NotUsed, &step.Detail); err != nil {
			t.Fatalf("explain %s: %v", query, err)
		}
		plan = append(plan, step)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("explain %s: %v", query, err)
	}
	return plan
}

func urlFilter(format string, args ...any) string {
	return url.QueryEscape(fmt.Sprintf(format, args...))
}
