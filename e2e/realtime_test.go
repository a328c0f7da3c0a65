package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pbchat/pbchat/chatmodule"
	"github.com/pbchat/pbchat/internal/chattest"
)

const wait = 5 * time.Second

// realtimeFixture: alice and bob share a group; carol is an outsider with a
// room of her own (the "sentinel" room), whose events prove by their order
// that nothing from the group reached her before them.
type realtimeFixture struct {
	env               *chattest.Env
	alice, bob, carol *chattest.User
	group, carolsRoom string
	// endpoints serve /api/realtime: the app, then the realtime nodes of a
	// cluster. connect takes them in turn.
	endpoints []string
	next      int
}

func newRealtimeFixture(t *testing.T) *realtimeFixture {
	return newFixtureWith(t, chatmodule.Config{})
}

func newFixtureWith(t *testing.T, config chatmodule.Config) *realtimeFixture {
	env := chattest.New(t, config)
	f := &realtimeFixture{env: env, alice: env.NewUser("alice"), bob: env.NewUser("bob"), carol: env.NewUser("carol")}
	f.group = f.createRoom(t, f.alice, "group")
	f.addMember(t, f.alice, f.group, f.bob)
	f.carolsRoom = f.createRoom(t, f.carol, "group")
	f.endpoints = []string{env.Server.URL}
	return f
}

// inTopologies runs test in one process, and on a writer with two realtime
// nodes over a real NATS server (connections spread over the three).
func inTopologies(t *testing.T, test func(t *testing.T, f *realtimeFixture)) {
	t.Run("one process", func(t *testing.T) { test(t, newRealtimeFixture(t)) })
	t.Run("writer and two nodes", func(t *testing.T) { test(t, newCluster(t).realtimeFixture) })
}

// connect opens a realtime connection as user at the next endpoint.
func (f *realtimeFixture) connect(user *chattest.User) *chattest.SSE {
	endpoint := f.endpoints[f.next%len(f.endpoints)]
	f.next++
	return f.env.ConnectAt(endpoint, user)
}

func (f *realtimeFixture) createRoom(t *testing.T, owner *chattest.User, roomType string) string {
	t.Helper()
	res := f.env.Do(owner, http.MethodPost, "/api/collections/chat_rooms/records", map[string]any{"type": roomType, "name": roomType})
	if res.Status != http.StatusOK {
		t.Fatalf("create room: %d %s", res.Status, res)
	}
	return res.Str("id")
}

func (f *realtimeFixture) addMember(t *testing.T, actor *chattest.User, room string, user *chattest.User) string {
	t.Helper()
	res := f.env.Do(actor, http.MethodPost, "/api/collections/chat_room_users/records", map[string]any{"room": room, "user": user.ID()})
	if res.Status != http.StatusOK {
		t.Fatalf("add member: %d %s", res.Status, res)
	}
	return res.Str("id")
}

func (f *realtimeFixture) post(t *testing.T, user *chattest.User, room, text string) string {
	t.Helper()
	res := f.env.Do(user, http.MethodPost, "/api/collections/chat_messages/records", map[string]any{"room": room, "text": text})
	if res.Status != http.StatusOK {
		t.Fatalf("post: %d %s", res.Status, res)
	}
	return res.Str("id")
}

func byID(id string) func(chattest.Event) bool {
	return func(ev chattest.Event) bool { return ev.RecordID() == id }
}

func TestRealtimeMemberGetsStockAndTopicEvents(t *testing.T) {
	inTopologies(t, func(t *testing.T, f *realtimeFixture) {
		bob := f.connect(f.bob)
		if res := bob.Subscribe("chat_messages/*", "chat/rooms/"+f.group); res.Status != http.StatusNoContent {
			t.Fatalf("subscribe: %d %s", res.Status, res)
		}

		id := f.post(t, f.alice, f.group, "hello bob")

		got := map[string]chattest.Event{}
		for len(got) < 2 {
			ev, ok := bob.Next(wait)
			if !ok {
				t.Fatalf("got only %v", got)
			}
			got[ev.Name] = ev
		}
		if stock := got["chat_messages/*"]; stock.Action() != "create" || stock.Record()["text"] != "hello bob" {
			t.Fatalf("stock event = %v", stock.Data)
		}
		if topic := got["chat/rooms/"+f.group]; topic.Type() != "message.created" || topic.RecordID() != id {
			t.Fatalf("topic event = %v", topic.Data)
		}
	})
}

func TestRealtimeOutsiderGetsNothing(t *testing.T) {
	inTopologies(t, func(t *testing.T, f *realtimeFixture) {
		carol := f.connect(f.carol)

		refused := carol.Subscribe("chat/rooms/" + f.group)
		if refused.Status != http.StatusForbidden {
			t.Fatalf("topic of a room carol is not in: want 403, got %d %s", refused.Status, refused)
		}
		if res := carol.Subscribe("chat_messages/*", "chat_room_users/*", "chat_message_reactions/*", "chat_rooms/*"); res.Status != http.StatusNoContent {
			t.Fatalf("stock subscribe: %d %s", res.Status, res)
		}

		groupMessage := f.post(t, f.alice, f.group, "secret")
		f.env.Do(f.bob, http.MethodPost, "/api/collections/chat_message_reactions/records", map[string]any{"message": groupMessage, "reaction": "👍"})
		f.env.Do(f.alice, http.MethodPatch, "/api/collections/chat_rooms/records/"+f.group, map[string]any{"name": "renamed"})
		sentinel := f.post(t, f.carol, f.carolsRoom, "mine")

		// Delivery to one client is in order: the first event she gets must be her own.
		first, ok := carol.Next(wait)
		if !ok || first.RecordID() != sentinel {
			t.Fatalf("carol's first event should be her own message %s, got %v", sentinel, first.Data)
		}

		// A guest's stock subscription delivers nothing either.
		guest := f.connect(nil)
		guest.Subscribe("chat_messages/*")
		f.post(t, f.alice, f.group, "still secret")
		guest.Quiet(t, 300*time.Millisecond)
	})
}

func TestRealtimeRemovedMemberStopsAtOnce(t *testing.T) {
	inTopologies(t, func(t *testing.T, f *realtimeFixture) {
		membership := f.env.Do(f.alice, http.MethodGet, "/api/collections/chat_room_users/records?filter=user='"+f.bob.ID()+"'", nil).Items()[0]["id"].(string)
		// bob is also in carol's room: its messages are his sentinel.
		f.addMember(t, f.carol, f.carolsRoom, f.bob)

		bob := f.connect(f.bob)
		bob.Subscribe("chat_messages/*", "chat/rooms/"+f.group, "chat_room_users/*")

		if res := f.env.Do(f.alice, http.MethodDelete, "/api/collections/chat_room_users/records/"+membership, nil); res.Status != http.StatusNoContent {
			t.Fatalf("remove bob: %d %s", res.Status, res)
		}
		left := bob.Expect(t, "chat/rooms/"+f.group, func(ev chattest.Event) bool { return ev.Type() == "member.left" }, wait)
		if left.RecordID() != membership {
			t.Fatalf("member.left record = %v", left.Data)
		}
		bob.Expect(t, "chat_room_users/*", func(ev chattest.Event) bool { return ev.Action() == "delete" }, wait)

		f.post(t, f.alice, f.group, "after bob left")
		sentinel := f.post(t, f.carol, f.carolsRoom, "sentinel")
		ev, ok := bob.Next(wait)
		if !ok || ev.RecordID() != sentinel {
			t.Fatalf("bob's next event should be the sentinel %s, got %s %v", sentinel, ev.Name, ev.Data)
		}

		// Subscribing again to the room's topic is refused now.
		if res := bob.Subscribe("chat/rooms/" + f.group); res.Status != http.StatusForbidden {
			t.Fatalf("resubscribe after removal: want 403, got %d", res.Status)
		}
	})
}

func TestRealtimeEventTypes(t *testing.T) {
	inTopologies(t, func(t *testing.T, f *realtimeFixture) {
		bob := f.connect(f.bob)
		topic := "chat/rooms/" + f.group
		bob.Subscribe(topic)
		expect := func(eventType string) chattest.Event {
			t.Helper()
			return bob.Expect(t, topic, func(ev chattest.Event) bool { return ev.Type() == eventType }, wait)
		}

		message := f.post(t, f.alice, f.group, "one")
		expect("message.created")
		f.env.Do(f.alice, http.MethodPatch, "/api/collections/chat_messages/records/"+message, map[string]any{"text": "two"})
		if ev := expect("message.updated"); ev.Record()["text"] != "two" {
			t.Fatalf("message.updated = %v", ev.Data)
		}
		reaction := f.env.Do(f.bob, http.MethodPost, "/api/collections/chat_message_reactions/records", map[string]any{"message": message, "reaction": "👍"}).Str("id")
		expect("reaction.created")
		f.env.Do(f.bob, http.MethodDelete, "/api/collections/chat_message_reactions/records/"+reaction, nil)
		expect("reaction.deleted")
		f.env.Do(f.alice, http.MethodDelete, "/api/collections/chat_messages/records/"+message, nil)
		expect("message.deleted")

		dave := f.env.NewUser("dave")
		membership := f.addMember(t, f.alice, f.group, dave)
		if ev := expect("member.joined"); ev.RecordID() != membership {
			t.Fatalf("member.joined = %v", ev.Data)
		}
		f.env.Do(f.alice, http.MethodPatch, "/api/collections/chat_room_users/records/"+membership, map[string]any{"permissions": []string{}})
		expect("member.updated")
		f.env.Do(f.alice, http.MethodDelete, "/api/collections/chat_room_users/records/"+membership, nil)
		expect("member.left")

		f.env.Do(f.alice, http.MethodPatch, "/api/collections/chat_rooms/records/"+f.group, map[string]any{"name": "new name"})
		if ev := expect("room.updated"); ev.Record()["name"] != "new name" {
			t.Fatalf("room.updated = %v", ev.Data)
		}
		f.env.Do(f.alice, http.MethodDelete, "/api/collections/chat_rooms/records/"+f.group, nil)
		expect("room.deleted")
	})
}

func TestRealtimeTypingReachesOthersNotTypist(t *testing.T) {
	inTopologies(t, func(t *testing.T, f *realtimeFixture) {
		topic := "chat/rooms/" + f.group
		alice, bob := f.connect(f.alice), f.connect(f.bob)
		alice.Subscribe(topic)
		bob.Subscribe(topic)

		if res := f.env.Do(f.alice, http.MethodPost, "/api/chat/rooms/"+f.group+"/typing", nil); res.Status != http.StatusNoContent {
			t.Fatalf("typing: %d %s", res.Status, res)
		}
		ev := bob.Expect(t, topic, func(ev chattest.Event) bool { return ev.Type() == "typing" }, wait)
		if ev.Record()["user"] != f.alice.ID() {
			t.Fatalf("typing event = %v", ev.Data)
		}
		// Alice's next event is the message she posts after typing, not her own typing.
		id := f.post(t, f.alice, f.group, "done typing")
		if first, ok := alice.Next(wait); !ok || first.RecordID() != id {
			t.Fatalf("typist got %v before her own message", first.Data)
		}

		if res := f.env.Do(f.carol, http.MethodPost, "/api/chat/rooms/"+f.group+"/typing", nil); res.Status != http.StatusNotFound {
			t.Fatalf("outsider typing: want 404, got %d", res.Status)
		}
	})
}

// TestRealtimeStockSubscriptionFollowsNewRooms: a stock subscription
// follows the rooms its user joins or creates after subscribing, on every
// endpoint (the nodes learn of the membership after the fact; what the room
// publishes right after it reaches them anyway).
func TestRealtimeStockSubscriptionFollowsNewRooms(t *testing.T) {
	inTopologies(t, func(t *testing.T, f *realtimeFixture) {
		for i, endpoint := range f.endpoints {
			dave := f.env.NewUser(fmt.Sprintf("dave%d", i))
			conn := f.env.ConnectAt(endpoint, dave)
			if res := conn.Subscribe("chat_messages/*", "chat_rooms/*"); res.Status != http.StatusNoContent {
				t.Fatalf("subscribe at %s: %d %s", endpoint, res.Status, res)
			}

			// Added to the group while connected: its next message reaches him.
			f.addMember(t, f.alice, f.group, dave)
			id := f.post(t, f.alice, f.group, "welcome dave")
			conn.Expect(t, "chat_messages/*", byID(id), wait)

			// A room he creates, and the first message in it by someone he adds.
			room := f.createRoom(t, dave, "group")
			conn.Expect(t, "chat_rooms/*", byID(room), wait)
			f.addMember(t, dave, room, f.bob)
			id = f.post(t, f.bob, room, "first in dave's room")
			conn.Expect(t, "chat_messages/*", byID(id), wait)

			// A private room someone else opens with him.
			res := f.env.Do(f.carol, http.MethodPost, "/api/chat/private", map[string]any{"user": dave.ID()})
			if res.Status != http.StatusCreated {
				t.Fatalf("private room: %d %s", res.Status, res)
			}
			id = f.post(t, f.carol, res.Str("id"), "hi dave")
			conn.Expect(t, "chat_messages/*", byID(id), wait)
		}
	})
}

// TestRealtimeEventsCarryTheirCursor: every event of the log reaches room
// topics and stock subscriptions with the cursor after it; typing has none.
func TestRealtimeEventsCarryTheirCursor(t *testing.T) {
	inTopologies(t, func(t *testing.T, f *realtimeFixture) {
		for _, endpoint := range f.endpoints {
			topic := "chat/rooms/" + f.group
			bob := f.env.ConnectAt(endpoint, f.bob)
			if res := bob.Subscribe(topic, "chat_messages/*"); res.Status != http.StatusNoContent {
				t.Fatalf("subscribe at %s: %d %s", endpoint, res.Status, res)
			}
			id := f.post(t, f.alice, f.group, "with a cursor")
			onTopic := bob.Expect(t, topic, byID(id), wait)
			onStock := bob.Expect(t, "chat_messages/*", byID(id), wait)
			cursor, _ := onTopic.Data["cursor"].(string)
			if cursor == "" || onStock.Data["cursor"] != cursor {
				t.Fatalf("at %s: topic cursor %v, stock cursor %v", endpoint, onTopic.Data["cursor"], onStock.Data["cursor"])
			}

			if res := f.env.Do(f.alice, http.MethodPost, "/api/chat/rooms/"+f.group+"/typing", nil); res.Status != http.StatusNoContent {
				t.Fatalf("typing: %d", res.Status)
			}
			typing := bob.Expect(t, topic, func(ev chattest.Event) bool { return ev.Type() == "typing" }, wait)
			if _, has := typing.Data["cursor"]; has {
				t.Fatalf("typing carries a cursor: %v", typing.Data)
			}
		}
	})
}

// TestRealtimeRevokedTokenEndsDelivery: a password change ends the user's
// realtime connections on every endpoint, as a deleted user does; the
// connection is closed and gets nothing more.
func TestRealtimeRevokedTokenEndsDelivery(t *testing.T) {
	inTopologies(t, func(t *testing.T, f *realtimeFixture) {
		admin := f.env.Superuser()
		for i, endpoint := range f.endpoints {
			for _, how := range []string{"password change", "deleted user"} {
				name := fmt.Sprintf("erin%d%s", i, how[:1])
				erin := f.env.NewUser(name)
				f.addMember(t, f.alice, f.group, erin)
				topic := "chat/rooms/" + f.group
				conn := f.env.ConnectAt(endpoint, erin)
				if res := conn.Subscribe(topic, "chat_messages/*"); res.Status != http.StatusNoContent {
					t.Fatalf("subscribe at %s: %d %s", endpoint, res.Status, res)
				}
				before := f.post(t, f.alice, f.group, "before")
				conn.Expect(t, "chat_messages/*", byID(before), wait)

				var res *chattest.Response
				if how == "password change" {
					res = f.env.Do(erin, http.MethodPatch, "/api/collections/users/records/"+erin.ID(), map[string]any{
						"oldPassword": "password-" + name, "password": "a-new-password", "passwordConfirm": "a-new-password",
					})
				} else {
					res = f.env.Do(admin, http.MethodDelete, "/api/collections/users/records/"+erin.ID(), nil)
				}
				if res.Status != http.StatusOK && res.Status != http.StatusNoContent {
					t.Fatalf("%s: %d %s", how, res.Status, res)
				}
				after := f.post(t, f.alice, f.group, "after")
				select {
				case <-conn.Closed():
				case <-time.After(wait):
					t.Fatalf("at %s after a %s the connection stays open", endpoint, how)
				}
				for len(conn.Events) > 0 {
					if ev := <-conn.Events; ev.RecordID() == after {
						t.Fatalf("at %s after a %s: got %s %v", endpoint, how, ev.Name, ev.Data)
					}
				}
			}
		}
	})
}

func TestRealtimeSubscriptionWithFilterDelivers(t *testing.T) {
	f := newRealtimeFixture(t)
	bob := f.env.Connect(f.bob)
	sub := "chat_messages/*?options=" + url.QueryEscape(`{"query":{"filter":"text ~ 'keep'"}}`)
	if res := bob.Subscribe(sub); res.Status != http.StatusNoContent {
		t.Fatalf("subscribe: %d", res.Status)
	}
	f.post(t, f.alice, f.group, "drop this")
	id := f.post(t, f.alice, f.group, "keep this")
	ev := bob.Expect(t, sub, nil, wait)
	if ev.RecordID() != id {
		t.Fatalf("filtered subscription got %v", ev.Data)
	}
}

// TestRealtimeCascadedDeletesCarryACursor: the reactions that go with a
// deleted message have no log row of their own, yet their stock delete
// events carry a cursor: one from which sync still gives message.deleted.
func TestRealtimeCascadedDeletesCarryACursor(t *testing.T) {
	inTopologies(t, func(t *testing.T, f *realtimeFixture) {
		bob := f.connect(f.bob)
		sub := "chat_message_reactions/*"
		if res := bob.Subscribe(sub); res.Status != http.StatusNoContent {
			t.Fatalf("subscribe: %d %s", res.Status, res)
		}
		id := f.post(t, f.alice, f.group, "soon gone")
		reaction := f.env.Do(f.bob, http.MethodPost, "/api/collections/chat_message_reactions/records", map[string]any{"message": id, "reaction": "👍"})
		if reaction.Status != http.StatusOK {
			t.Fatalf("react: %d %s", reaction.Status, reaction)
		}
		bob.Expect(t, sub, byID(reaction.Str("id")), wait)
		if res := f.env.Do(f.alice, http.MethodDelete, "/api/collections/chat_messages/records/"+id, nil); res.Status != http.StatusNoContent {
			t.Fatalf("delete: %d %s", res.Status, res)
		}
		ev := bob.Expect(t, sub, func(ev chattest.Event) bool { return ev.Action() == "delete" && ev.RecordID() == reaction.Str("id") }, wait)
		cursor, _ := ev.Data["cursor"].(string)
		if cursor == "" {
			t.Fatalf("the cascaded reaction delete came without a cursor: %v", ev.Data)
		}
		res := f.env.Do(f.bob, http.MethodGet, "/api/chat/sync?since="+url.QueryEscape(cursor), nil)
		if !strings.Contains(res.String(), `"message.deleted"`) || !strings.Contains(res.String(), id) {
			t.Errorf("sync from the cascaded event's cursor misses message.deleted: %s", res)
		}
	})
}
