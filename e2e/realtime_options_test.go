package e2e

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pocketbase/pocketbase/tools/subscriptions"

	"github.com/pbchat/pbchat/internal/chattest"
)

// Stock subscriptions with filter/expand/fields options are served by the hub
// (realtime/options.go): only the room's connected members get events, each
// rendered with PocketBase's semantics; guests' chat subscriptions are
// dropped; nodes refuse options.

// withOptions is a stock subscription with options as the SDKs send it.
func withOptions(topic, options string) string {
	return topic + "?options=" + url.QueryEscape(options)
}

func TestRealtimeOptionsFilter(t *testing.T) {
	f := newRealtimeFixture(t)
	bob := f.env.Connect(f.bob)
	keep := withOptions("chat_messages/*", `{"query":{"filter":"text ~ 'keep'","fields":"id,text"}}`)
	never := withOptions("chat_messages/*", `{"query":{"filter":"text ~ 'never'"}}`)
	if res := bob.Subscribe("chat_messages/*", keep, never); res.Status != http.StatusNoContent {
		t.Fatalf("subscribe: %d %s", res.Status, res)
	}

	dropped := f.post(t, f.alice, f.group, "drop this")
	kept := f.post(t, f.alice, f.group, "keep this")
	droppedToo := f.post(t, f.alice, f.group, "drop this too")
	// An update that makes a record match reaches the filtered subscription.
	if res := f.env.Do(f.alice, http.MethodPatch, "/api/collections/chat_messages/records/"+dropped, map[string]any{"text": "keep it after all"}); res.Status != http.StatusOK {
		t.Fatalf("edit: %d %s", res.Status, res)
	}
	// Deletes are filtered on the record as it was (fields applied).
	for _, id := range []string{kept, droppedToo} {
		if res := f.env.Do(f.alice, http.MethodDelete, "/api/collections/chat_messages/records/"+id, nil); res.Status != http.StatusNoContent {
			t.Fatalf("delete: %d %s", res.Status, res)
		}
	}
	sentinel := f.post(t, f.alice, f.group, "keep: the last one")

	type got struct{ name, action, id string }
	var events []got
	for {
		ev, ok := bob.Next(wait)
		if !ok {
			t.Fatalf("no sentinel on the filtered subscription; got %v", events)
		}
		events = append(events, got{ev.Name, ev.Action(), ev.RecordID()})
		if ev.Name == never {
			t.Fatalf("the never-matching subscription got %v", ev.Data)
		}
		if ev.Name == keep {
			if keys := recordKeys(ev); !slices.Equal(keys, []string{"id", "text"}) {
				t.Fatalf("fields id,text: the record has %v", keys)
			}
		}
		if ev.Name == keep && ev.RecordID() == sentinel {
			break
		}
	}
	var filtered []got
	for _, ev := range events {
		if ev.name == keep {
			filtered = append(filtered, ev)
		}
	}
	want := []got{
		{keep, "create", kept},
		{keep, "update", dropped},
		{keep, "delete", kept},
		{keep, "create", sentinel},
	}
	if !slices.Equal(filtered, want) {
		t.Fatalf("filtered subscription got %v, want %v", filtered, want)
	}
	// The plain subscription on the same connection got everything, first.
	if events[0] != (got{"chat_messages/*", "create", dropped}) {
		t.Fatalf("first event = %v, want the plain subscription's create of %s", events[0], dropped)
	}
}

func TestRealtimeOptionsExpandAndFields(t *testing.T) {
	f := newRealtimeFixture(t)
	bob := f.env.Connect(f.bob)
	expand := withOptions("chat_messages/*", `{"query":{"expand":"room,user"}}`)
	picked := withOptions("chat_messages/*", `{"query":{"expand":"room","fields":"id,expand.room.name"}}`)
	if res := bob.Subscribe(expand, picked); res.Status != http.StatusNoContent {
		t.Fatalf("subscribe: %d %s", res.Status, res)
	}

	fromAlice := f.post(t, f.alice, f.group, "from alice")
	ev := bob.Expect(t, expand, byID(fromAlice), wait)
	expanded, _ := ev.Record()["expand"].(map[string]any)
	if room, _ := expanded["room"].(map[string]any); room["id"] != f.group || room["name"] != "group" {
		t.Fatalf("expand room: %v", ev.Data)
	}
	// Users may view only themselves here: alice is not bob's to expand.
	if _, ok := expanded["user"]; ok {
		t.Fatalf("expand reached a user bob may not view: %v", expanded["user"])
	}
	if ev.Record()["text"] != "from alice" {
		t.Fatalf("record: %v", ev.Data)
	}
	ev = bob.Expect(t, picked, byID(fromAlice), wait)
	if keys := recordKeys(ev); !slices.Equal(keys, []string{"expand", "id"}) {
		t.Fatalf("fields id,expand.room.name: the record has %v", keys)
	}
	room, _ := ev.Record()["expand"].(map[string]any)["room"].(map[string]any)
	if len(room) != 1 || room["name"] != "group" {
		t.Fatalf("fields expand.room.name: %v", ev.Data)
	}

	// His own message: he may view himself, email included.
	fromBob := f.post(t, f.bob, f.group, "from bob")
	ev = bob.Expect(t, expand, byID(fromBob), wait)
	user, _ := ev.Record()["expand"].(map[string]any)["user"].(map[string]any)
	if user["id"] != f.bob.ID() || user["email"] != f.bob.Record.Email() {
		t.Fatalf("expand of his own user: %v", ev.Data)
	}
}

func TestRealtimeOptionsReachNoOutsider(t *testing.T) {
	f := newRealtimeFixture(t)
	carol := f.env.Connect(f.carol)
	subs := []string{
		withOptions("chat_messages/*", `{"query":{"filter":"text != ''"}}`),
		withOptions("chat_messages/*", `{"query":{"expand":"room"}}`),
		withOptions("chat_messages/*", `{"query":{"fields":"id,text"}}`),
		withOptions("chat_rooms/*", `{"query":{"filter":"id != ''"}}`),
		withOptions("chat_messages/*", `{"query":{"filter":"room = '`+f.group+`'"}}`),
	}
	if res := carol.Subscribe(subs...); res.Status != http.StatusNoContent {
		t.Fatalf("subscribe: %d %s", res.Status, res)
	}
	f.post(t, f.alice, f.group, "secret")
	f.env.Do(f.alice, http.MethodPatch, "/api/collections/chat_rooms/records/"+f.group, map[string]any{"name": "renamed"})
	sentinel := f.post(t, f.carol, f.carolsRoom, "mine")

	// Delivery to one client is in order: her own message comes first.
	first, ok := carol.Next(wait)
	if !ok || first.RecordID() != sentinel {
		t.Fatalf("carol's first event should be her own message %s, got %s %v", sentinel, first.Name, first.Data)
	}
	for {
		ev, ok := carol.Next(300 * time.Millisecond)
		if !ok {
			break
		}
		if ev.RecordID() != sentinel {
			t.Fatalf("carol got %s %v", ev.Name, ev.Data)
		}
	}
}

func TestRealtimeOptionsGuestGetsNothingAndCostsNothing(t *testing.T) {
	f := newRealtimeFixture(t)
	guest := f.env.Connect(nil)
	subs := []string{
		withOptions("chat_messages/*", `{"query":{"filter":"text != ''"}}`),
		withOptions("chat_messages/*", `{"query":{"expand":"room","fields":"id"}}`),
		"chat_messages/*",
		"chat_rooms/*",
	}
	if res := guest.Subscribe(subs...); res.Status != http.StatusNoContent {
		t.Fatalf("guest subscribe: %d %s", res.Status, res)
	}
	// None of them is left to PocketBase's broadcaster, which would check
	// this connection on every chat record event.
	client, err := f.env.App.SubscriptionsBroker().ClientById(guest.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	if left := client.Subscriptions(); len(left) != 0 {
		t.Fatalf("subscriptions left to PocketBase: %v", keysOf(left))
	}

	f.post(t, f.alice, f.group, "not for guests")
	f.post(t, f.carol, f.carolsRoom, "nor this")
	guest.Quiet(t, 500*time.Millisecond)

	// A superuser's subscription with options stays PocketBase's, as before.
	admin := f.env.Connect(f.env.Superuser())
	sub := withOptions("chat_messages/*", `{"query":{"filter":"text ~ 'admin'"}}`)
	if res := admin.Subscribe(sub); res.Status != http.StatusNoContent {
		t.Fatalf("superuser subscribe: %d %s", res.Status, res)
	}
	client, err = f.env.App.SubscriptionsBroker().ClientById(admin.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	if left := client.Subscriptions(); len(left) != 1 {
		t.Fatalf("superuser's subscriptions with PocketBase: %v", keysOf(left))
	}
	f.post(t, f.alice, f.group, "skipped")
	id := f.post(t, f.alice, f.group, "admin sees this")
	if ev := admin.Expect(t, sub, nil, wait); ev.RecordID() != id {
		t.Fatalf("superuser's filtered subscription got %v", ev.Data)
	}
}

func TestClusterNodeRefusesOptions(t *testing.T) {
	c := newCluster(t)
	for _, node := range c.nodes {
		for _, user := range []*chattest.User{c.bob, nil} {
			conn := c.env.ConnectAt(node.url, user)
			for _, options := range []string{`{"query":{"filter":"text != ''"}}`, `{"query":{"expand":"room"}}`, `{"query":{"fields":"id"}}`} {
				res := conn.Subscribe("chat_messages/*", withOptions("chat_messages/*", options))
				if res.Status != http.StatusBadRequest || !strings.Contains(res.String(), "writer's /api/realtime") {
					t.Fatalf("options %s on a node: want 400 naming the writer's /api/realtime, got %d %s", options, res.Status, res)
				}
				if data, _ := res.JSON()["data"].(map[string]any); data["subscriptions"] == nil {
					t.Fatalf("the 400 should name subscriptions: %s", res)
				}
			}
		}
	}
	// Without options the node serves the member as before.
	bob := c.env.ConnectAt(c.nodes[0].url, c.bob)
	if res := bob.Subscribe("chat_messages/*"); res.Status != http.StatusNoContent {
		t.Fatalf("plain subscription on a node: %d %s", res.Status, res)
	}
	id := c.post(t, c.alice, c.group, "plain")
	bob.Expect(t, "chat_messages/*", byID(id), wait)
}

func recordKeys(ev chattest.Event) []string {
	var keys []string
	for k := range ev.Record() {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func keysOf(m map[string]subscriptions.SubscriptionOptions) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}
