package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"github.com/pbchat/pbchat/chatmodule"
	"github.com/pbchat/pbchat/internal/chat"
	"github.com/pbchat/pbchat/internal/chattest"
)

// SPEC "Conversations → Moderation": bans, silence, slow mode, reports;
// each action granted and refused ("not above me" included), and the ban
// invariant through the dashboard and Go.

const (
	modBans    = "/api/collections/chat_room_bans/records"
	modReports = "/api/collections/chat_message_reports/records"
)

// modWorld: a group where alice is the creator (every permission), bob a
// plain member (group defaults), carol a moderator holding can_remove_users
// but not can_delete_messages or can_edit_room, eve a plain member; dave
// is in no room.
type modWorld struct {
	*rig
	alice, bob, carol, dave, eve *chattest.User
	group                        string
}

func newModWorld(t *testing.T) *modWorld {
	r := newRig(t, chatmodule.Config{RateLimits: chat.RateLimits{Disabled: true}})
	w := &modWorld{rig: r}
	w.alice, w.bob, w.carol, w.dave, w.eve = r.NewUser("alice"), r.NewUser("bob"), r.NewUser("carol"), r.NewUser("dave"), r.NewUser("eve")
	w.group = r.createRoom(w.alice, "group", "Group")
	r.addMember(w.alice, w.group, w.bob, nil)
	r.addMember(w.alice, w.group, w.carol, []string{chat.CanAddUsers, chat.CanRemoveUsers, chat.CanCreateMessages, chat.CanEditOwnMessages, chat.CanDeleteOwnMessages})
	r.addMember(w.alice, w.group, w.eve, nil)
	return w
}

func (w *modWorld) isMember(room string, u *chattest.User) bool {
	w.t.Helper()
	return w.Count("chat_room_users", "room = {:r} && user = {:u}", dbx.Params{"r": room, "u": u.ID()}) == 1
}

func (w *modWorld) ban(actor, user *chattest.User, room string, until time.Time) *chattest.Response {
	w.t.Helper()
	body := map[string]any{"room": room, "user": user.ID(), "reason": "test"}
	if !until.IsZero() {
		body["until"] = until.UTC().Format("2006-01-02 15:04:05.000Z")
	}
	return w.Do(actor, http.MethodPost, modBans, body)
}

func (w *modWorld) listIDs(u *chattest.User, path string) []string {
	w.t.Helper()
	res := w.Do(u, http.MethodGet, path, nil)
	w.expect(res, http.StatusOK, "list "+path)
	var ids []string
	for _, item := range res.Items() {
		ids = append(ids, item["id"].(string))
	}
	return ids
}

func TestModerationBans(t *testing.T) {
	w := newModWorld(t)

	t.Run("refused", func(t *testing.T) {
		w := &modWorld{rig: &rig{Env: w.Env, t: t}, alice: w.alice, bob: w.bob, carol: w.carol, dave: w.dave, eve: w.eve, group: w.group}
		rigExpectForbidden(t, w.ban(w.bob, w.eve, w.group, time.Time{}), chat.CanRemoveUsers)
		if res := w.ban(w.dave, w.eve, w.group, time.Time{}); res.Status != http.StatusNotFound {
			t.Fatalf("outsider bans: %d, want 404: %s", res.Status, res)
		}
		// Not above me: alice holds can_delete_messages, which carol lacks.
		rigExpectForbidden(t, w.ban(w.carol, w.alice, w.group, time.Time{}), chat.CanDeleteMessages)
		rigExpectForbidden(t, w.ban(w.carol, w.carol, w.group, time.Time{}), chat.CanRemoveUsers)
		rigExpectField(t, w.ban(w.alice, w.eve, w.group, time.Now().Add(-time.Hour)), "until")
		if n := w.Count("chat_room_bans", ""); n != 0 || !w.isMember(w.group, w.eve) || !w.isMember(w.group, w.alice) {
			t.Fatalf("a refused ban wrote something: %d bans", n)
		}
	})

	var banID string
	t.Run("ban removes the membership and refuses adding", func(t *testing.T) {
		res := w.ban(w.carol, w.eve, w.group, time.Time{})
		if res.Status != http.StatusOK {
			t.Fatalf("ban: %d %s", res.Status, res)
		}
		banID = res.Str("id")
		if res.Str("created_by") != w.carol.ID() {
			t.Fatalf("created_by = %q, want carol", res.Str("created_by"))
		}
		if w.isMember(w.group, w.eve) {
			t.Fatal("the banned user is still a member")
		}
		rigExpectForbidden(t, w.Do(w.bob, http.MethodPost, rigMembers, map[string]any{"room": w.group, "user": w.eve.ID()}), chat.Banned)
		rigExpectForbidden(t, w.Do(w.alice, http.MethodPost, rigMembers, map[string]any{"room": w.group, "user": w.eve.ID()}), chat.Banned)
	})

	t.Run("visible to moderators only", func(t *testing.T) {
		for _, tc := range []struct {
			who  *chattest.User
			sees bool
		}{{w.alice, true}, {w.carol, true}, {w.bob, false}, {w.dave, false}, {w.eve, false}} {
			ids := w.listIDs(tc.who, modBans)
			if (len(ids) == 1) != tc.sees {
				t.Errorf("%s lists %v, want sees=%v", tc.who.Record.Email(), ids, tc.sees)
			}
			res := w.Do(tc.who, http.MethodGet, modBans+"/"+banID, nil)
			if (res.Status == http.StatusOK) != tc.sees {
				t.Errorf("%s views the ban: %d, want sees=%v", tc.who.Record.Email(), res.Status, tc.sees)
			}
		}
		// The query guard keeps other members' filters out of the bans.
		res := w.Do(w.bob, http.MethodGet, rigRooms+"?filter="+url.QueryEscape("chat_room_bans_via_room.user = '"+w.eve.ID()+"'"), nil)
		rigExpectField(t, res, "filter")
	})

	t.Run("unban", func(t *testing.T) {
		if res := w.Do(w.bob, http.MethodDelete, modBans+"/"+banID, nil); res.Status != http.StatusNotFound {
			t.Fatalf("bob unbans: %d, want 404: %s", res.Status, res)
		}
		w.expect(w.Do(w.carol, http.MethodDelete, modBans+"/"+banID, nil), http.StatusNoContent, "carol unbans")
		w.addMember(w.bob, w.group, w.eve, nil)
	})

	t.Run("a ban with until in the past no longer applies", func(t *testing.T) {
		res := w.ban(w.alice, w.eve, w.group, time.Now().Add(time.Hour))
		w.expect(res, http.StatusOK, "ban for an hour")
		// The dashboard ends it.
		admin := w.Superuser()
		w.expect(w.Do(admin, http.MethodPatch, modBans+"/"+res.Str("id"), map[string]any{"until": time.Now().Add(-time.Minute).UTC().Format("2006-01-02 15:04:05.000Z")}), http.StatusOK, "dashboard moves until")
		w.addMember(w.bob, w.group, w.eve, nil)
		// A new ban replaces the expired one.
		w.expect(w.ban(w.alice, w.eve, w.group, time.Time{}), http.StatusOK, "ban again")
		if n := w.Count("chat_room_bans", "room = {:r} && user = {:u}", dbx.Params{"r": w.group, "u": w.eve.ID()}); n != 1 || w.isMember(w.group, w.eve) {
			t.Fatalf("%d bans, member %v; want 1 ban and no membership", n, w.isMember(w.group, w.eve))
		}
	})

	t.Run("public room: a banned user cannot join", func(t *testing.T) {
		frank := w.NewUser("frank")
		channel := w.createRoom(w.alice, "channel", "Public")
		w.expect(w.Do(w.alice, http.MethodPatch, rigRooms+"/"+channel, map[string]any{"is_public": true}), http.StatusOK, "make public")
		join := map[string]any{"room": channel, "user": frank.ID()}
		w.expect(w.Do(frank, http.MethodPost, rigMembers, join), http.StatusOK, "join")
		w.expect(w.ban(w.alice, frank, channel, time.Time{}), http.StatusOK, "ban frank")
		rigExpectForbidden(t, w.Do(frank, http.MethodPost, rigMembers, join), chat.Banned)
		// frank cannot see (nor lift) his own ban.
		if ids := w.listIDs(frank, modBans); len(ids) != 0 {
			t.Fatalf("the banned user lists bans %v", ids)
		}
	})
}

// Invariant: a banned user added through the dashboard or Go is refused.
func TestModerationBanInvariant(t *testing.T) {
	w := newModWorld(t)
	admin := w.Superuser()
	bans, err := w.App.FindCollectionByNameOrId("chat_room_bans")
	if err != nil {
		t.Fatal(err)
	}
	// A ban written in Go removes the membership too.
	ban := core.NewRecord(bans)
	ban.Set("room", w.group)
	ban.Set("user", w.eve.ID())
	if err := w.App.Save(ban); err != nil {
		t.Fatalf("Go ban: %v", err)
	}
	if w.isMember(w.group, w.eve) {
		t.Fatal("a ban written in Go left the membership")
	}
	rigExpectForbidden(t, w.Do(admin, http.MethodPost, rigMembers, map[string]any{"room": w.group, "user": w.eve.ID()}), chat.Banned)
	members, err := w.App.FindCollectionByNameOrId("chat_room_users")
	if err != nil {
		t.Fatal(err)
	}
	membership := core.NewRecord(members)
	membership.Set("room", w.group)
	membership.Set("user", w.eve.ID())
	if err := w.App.Save(membership); err == nil {
		t.Fatal("Go added a banned user")
	}
	if w.isMember(w.group, w.eve) {
		t.Fatal("the banned user is a member")
	}
}

func TestModerationSilence(t *testing.T) {
	w := newModWorld(t)
	msg := w.post(w.bob, w.group, "hello")
	eveMembership := w.membership(w.group, w.eve).Id
	aliceMembership := w.membership(w.group, w.alice).Id
	at := func(d time.Duration) string { return time.Now().Add(d).UTC().Format("2006-01-02 15:04:05.000Z") }
	silence := func(actor *chattest.User, membership, until string) *chattest.Response {
		return w.Do(actor, http.MethodPatch, rigMembers+"/"+membership, map[string]any{"silenced_until": until})
	}

	rigExpectForbidden(t, silence(w.bob, eveMembership, at(time.Hour)), chat.CanRemoveUsers)
	rigExpectForbidden(t, silence(w.carol, aliceMembership, at(time.Hour)), chat.CanDeleteMessages)
	if res := silence(w.dave, eveMembership, at(time.Hour)); res.Status != http.StatusNotFound {
		t.Fatalf("outsider silences: %d, want 404", res.Status)
	}
	// Adding a member already silenced is a silence too.
	frank := w.NewUser("frank")
	rigExpectForbidden(t, w.Do(w.bob, http.MethodPost, rigMembers, map[string]any{"room": w.group, "user": frank.ID(), "silenced_until": at(time.Hour)}), chat.CanRemoveUsers)
	w.expect(w.Do(w.carol, http.MethodPost, rigMembers, map[string]any{"room": w.group, "user": frank.ID(), "silenced_until": at(time.Hour)}), http.StatusOK, "carol adds frank silenced")
	rigExpectForbidden(t, w.Do(frank, http.MethodPost, rigMessages, map[string]any{"room": w.group, "text": "hi"}), chat.Silenced)

	w.expect(silence(w.carol, eveMembership, at(time.Hour)), http.StatusOK, "carol silences eve")

	rigExpectForbidden(t, w.Do(w.eve, http.MethodPost, rigMessages, map[string]any{"room": w.group, "text": "hi"}), chat.Silenced)
	rigExpectForbidden(t, silence(w.eve, eveMembership, ""), chat.CanRemoveUsers)
	w.react(w.eve, msg, "👍") // reactions are still allowed

	// Expiry: a silence in the past no longer applies.
	w.expect(silence(w.carol, eveMembership, at(-time.Second)), http.StatusOK, "silence ends")
	w.post(w.eve, w.group, "back")
	// The dashboard silences too, and unsilences.
	admin := w.Superuser()
	w.expect(silence(admin, eveMembership, at(time.Hour)), http.StatusOK, "dashboard silences")
	rigExpectForbidden(t, w.Do(w.eve, http.MethodPost, rigMessages, map[string]any{"room": w.group, "text": "hi"}), chat.Silenced)
	w.expect(silence(admin, eveMembership, ""), http.StatusOK, "dashboard unsilences")
	w.post(w.eve, w.group, "back again")
}

// modPost posts as u and returns the status and Retry-After.
func modPost(t *testing.T, w *modWorld, u *chattest.User, room, text string) (int, string) {
	t.Helper()
	return modSend(t, w, u, rigMessages, map[string]any{"room": room, "text": text})
}

// modBatchPost posts as u through the batch API.
func modBatchPost(t *testing.T, w *modWorld, u *chattest.User, room, text string) (int, string) {
	t.Helper()
	return modSend(t, w, u, "/api/batch", map[string]any{"requests": []any{
		map[string]any{"method": http.MethodPost, "url": rigMessages, "body": map[string]any{"room": room, "text": text}},
	}})
}

func modSend(t *testing.T, w *modWorld, u *chattest.User, path string, body any) (int, string) {
	t.Helper()
	raw, _ := json.Marshal(body)
	req, err := http.NewRequest(http.MethodPost, w.Server.URL+path, bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", u.Token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode, res.Header.Get("Retry-After")
}

func TestModerationSlowMode(t *testing.T) {
	w := newModWorld(t)
	slow := func(actor *chattest.User, seconds any) *chattest.Response {
		return w.Do(actor, http.MethodPatch, rigRooms+"/"+w.group, map[string]any{"slow_mode_seconds": seconds})
	}
	rigExpectForbidden(t, slow(w.bob, 30), chat.CanEditRoom)
	rigExpectField(t, slow(w.alice, -1), "slow_mode_seconds")
	w.expect(slow(w.alice, 30), http.StatusOK, "slow mode on")

	// A member who just joined posts at once: the join is no post.
	frank := w.NewUser("frank")
	w.addMember(w.alice, w.group, frank, nil)
	if status, _ := modPost(t, w, frank, w.group, "hi"); status != http.StatusOK {
		t.Fatalf("first post after joining: %d", status)
	}

	if status, _ := modPost(t, w, w.eve, w.group, "one"); status != http.StatusOK {
		t.Fatalf("first post: %d", status)
	}
	status, retry := modPost(t, w, w.eve, w.group, "two")
	if status != http.StatusTooManyRequests {
		t.Fatalf("second post: %d, want 429", status)
	}
	if s, err := strconv.Atoi(retry); err != nil || s < 1 || s > 30 {
		t.Fatalf("Retry-After = %q, want 1..30", retry)
	}
	// Through the batch API: the same 429 for the whole batch, nothing written.
	status, retry = modBatchPost(t, w, w.eve, w.group, "batched")
	if s, err := strconv.Atoi(retry); status != http.StatusTooManyRequests || err != nil || s < 1 || s > 30 {
		t.Fatalf("batched post: %d with Retry-After %q, want 429 with 1..30", status, retry)
	}
	if n := w.Count("chat_messages", "text = 'batched'", nil); n != 0 {
		t.Fatalf("the refused batch wrote %d messages", n)
	}
	// can_delete_messages is exempt.
	for i := 0; i < 2; i++ {
		if status, _ := modPost(t, w, w.alice, w.group, "moderator"); status != http.StatusOK {
			t.Fatalf("alice's post %d: %d", i, status)
		}
	}

	t.Run("concurrent posts: one passes", func(t *testing.T) {
		const n = 6
		var wg sync.WaitGroup
		statuses := make([]int, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				statuses[i], _ = modPost(t, w, w.bob, w.group, "race "+strconv.Itoa(i))
			}()
		}
		wg.Wait()
		ok := 0
		for _, s := range statuses {
			switch s {
			case http.StatusOK:
				ok++
			case http.StatusTooManyRequests:
			default:
				t.Fatalf("status %d in %v", s, statuses)
			}
		}
		if ok != 1 {
			t.Fatalf("%d concurrent posts passed (%v), want 1", ok, statuses)
		}
	})

	// Once the window has passed, the member posts again.
	w.expect(slow(w.alice, 1), http.StatusOK, "slow mode of a second")
	time.Sleep(1100 * time.Millisecond)
	if status, _ := modPost(t, w, w.eve, w.group, "later"); status != http.StatusOK {
		t.Fatalf("post after the window: %d", status)
	}
	w.expect(slow(w.alice, 0), http.StatusOK, "slow mode off")
	if status, _ := modPost(t, w, w.eve, w.group, "three"); status != http.StatusOK {
		t.Fatalf("post with slow mode off: %d", status)
	}
}

func TestModerationReports(t *testing.T) {
	w := newModWorld(t)
	// mod moderates messages: can_delete_messages only; carol (can_remove_users) does not see reports.
	mod := w.NewUser("mod")
	w.addMember(w.alice, w.group, mod, []string{chat.CanDeleteMessages})
	msg := w.post(w.bob, w.group, "buy now")

	rigExpectField(t, w.Do(w.eve, http.MethodPost, modReports, map[string]any{"message": msg, "reason": "  "}), "reason")
	if res := w.Do(w.dave, http.MethodPost, modReports, map[string]any{"message": msg, "reason": "spam"}); res.Status != http.StatusNotFound {
		t.Fatalf("outsider reports: %d, want 404: %s", res.Status, res)
	}
	res := w.Do(w.eve, http.MethodPost, modReports, map[string]any{"message": msg, "reason": "spam", "reporter": w.bob.ID()})
	w.expect(res, http.StatusOK, "eve reports")
	report := res.Str("id")
	if res.Str("reporter") != w.eve.ID() || res.Str("room") != w.group {
		t.Fatalf("reporter %q room %q, want eve and the group: %s", res.Str("reporter"), res.Str("room"), res)
	}

	for _, tc := range []struct {
		who  *chattest.User
		sees bool
	}{{w.eve, true}, {mod, true}, {w.alice, true}, {w.bob, false}, {w.carol, false}, {w.dave, false}} {
		ids := w.listIDs(tc.who, modReports)
		if (len(ids) == 1) != tc.sees {
			t.Errorf("%s lists %v, want sees=%v", tc.who.Record.Email(), ids, tc.sees)
		}
		if res := w.Do(tc.who, http.MethodGet, modReports+"/"+report, nil); (res.Status == http.StatusOK) != tc.sees {
			t.Errorf("%s views the report: %d, want sees=%v", tc.who.Record.Email(), res.Status, tc.sees)
		}
	}
	if ids := w.listIDs(w.Superuser(), modReports); len(ids) != 1 {
		t.Errorf("superuser lists %v", ids)
	}
	// Other members cannot reach reports through a filter on messages.
	rigExpectField(t, w.Do(w.bob, http.MethodGet, rigMessages+"?filter="+url.QueryEscape("chat_message_reports_via_message.reason ~ 'spam'"), nil), "filter")
	// The reporter still sees the report after leaving the room.
	w.expect(w.Do(w.eve, http.MethodDelete, rigMembers+"/"+w.membership(w.group, w.eve).Id, nil), http.StatusNoContent, "eve leaves")
	if ids := w.listIDs(w.eve, modReports); len(ids) != 1 {
		t.Errorf("after leaving, eve lists %v", ids)
	}
	// A moderator dismisses it.
	w.expect(w.Do(mod, http.MethodDelete, modReports+"/"+report, nil), http.StatusNoContent, "dismiss")
}

// Realtime: a ban is the banned user's member.left in the room; the ban
// itself is no room event, and reaches (through PocketBase's stock
// subscription, under the API rules) the room's moderators only.
func TestModerationRealtime(t *testing.T) {
	w := newModWorld(t)
	const wait = 5 * time.Second
	eveMembership := w.membership(w.group, w.eve).Id
	bob, alice := w.Connect(w.bob), w.Connect(w.alice)
	defer bob.Close()
	defer alice.Close()
	for _, c := range []*chattest.SSE{bob, alice} {
		if res := c.Subscribe(chat.RoomTopicPrefix+w.group, "chat_room_bans/*"); res.Status != http.StatusNoContent {
			t.Fatalf("subscribe: %d %s", res.Status, res)
		}
	}
	res := w.ban(w.carol, w.eve, w.group, time.Time{})
	w.expect(res, http.StatusOK, "ban")
	left := bob.Expect(t, chat.RoomTopicPrefix+w.group, func(ev chattest.Event) bool { return ev.Type() == chat.EventMemberLeft }, wait)
	if left.RecordID() != eveMembership {
		t.Fatalf("member.left record = %v, want eve's membership", left.Data)
	}
	alice.Expect(t, "chat_room_bans/*", func(ev chattest.Event) bool { return ev.RecordID() == res.Str("id") }, wait)
	// bob (no can_remove_users) gets nothing of the ban: a message after it
	// is the next thing he sees.
	msg := w.post(w.alice, w.group, "after the ban")
	for {
		ev, ok := bob.Next(wait)
		if !ok {
			t.Fatal("no event for the message")
		}
		if ev.Name == "chat_room_bans/*" {
			t.Fatalf("bob got the ban: %v", ev.Data)
		}
		if ev.RecordID() == msg {
			break
		}
	}
}
