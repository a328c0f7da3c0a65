package realtime

import (
	"encoding/json"
	"log/slog"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tests"
	"github.com/pocketbase/pocketbase/tools/subscriptions"

	"github.com/pbchat/pbchat/internal/chat"
	"github.com/pbchat/pbchat/migrations"
)

// optionsWorld is an app with pbchat's collections and rules (no hooks):
// alice and bob share a room named "group"; alice wrote a message.
type optionsWorld struct {
	app        *tests.TestApp
	settings   chat.Settings
	alice, bob *core.Record
	room       *core.Record
}

// newChatApp is a test app with pbchat's collections and default settings.
func newChatApp(t *testing.T) (*tests.TestApp, chat.Settings) {
	t.Helper()
	app, err := tests.NewTestApp(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(app.Cleanup)
	settings, err := chat.Settings{}.WithDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if err := migrations.Run(app, settings); err != nil {
		t.Fatal(err)
	}
	return app, settings
}

func newOptionsWorld(t *testing.T) *optionsWorld {
	t.Helper()
	app, settings := newChatApp(t)
	w := &optionsWorld{app: app, settings: settings}
	w.alice, w.bob = w.save(t, "users", map[string]any{"email": "alice@example.com", "password": "password-alice"}),
		w.save(t, "users", map[string]any{"email": "bob@example.com", "password": "password-bob"})
	w.room = w.save(t, migrations.Rooms, map[string]any{"type": "group", "name": "group", "created_by": w.alice.Id})
	for _, u := range []*core.Record{w.alice, w.bob} {
		w.save(t, migrations.RoomUsers, map[string]any{"room": w.room.Id, "user": u.Id})
	}
	return w
}

func (w *optionsWorld) save(t *testing.T, collection string, data map[string]any) *core.Record {
	t.Helper()
	c, err := w.app.FindCollectionByNameOrId(collection)
	if err != nil {
		t.Fatal(err)
	}
	record := core.NewRecord(c)
	record.Load(data)
	if err := w.app.Save(record); err != nil {
		t.Fatalf("save %s: %v", collection, err)
	}
	return record
}

func (w *optionsWorld) message(t *testing.T, text string) *core.Record {
	return w.save(t, migrations.Messages, map[string]any{"room": w.room.Id, "user": w.alice.Id, "text": text})
}

// event is the chat.Event the hooks publish for record.
func event(t *testing.T, action string, record *core.Record) chat.Event {
	t.Helper()
	raw, err := json.Marshal(record.Fresh())
	if err != nil {
		t.Fatal(err)
	}
	return chat.Event{Room: record.GetString("room"), Collection: record.Collection().Name, Action: action, RecordID: record.Id, Record: raw}
}

// connection is a PocketBase client as /api/realtime leaves it after a
// subscribe request by auth.
func connection(auth *core.Record) subscriptions.Client {
	c := NewClient()
	if auth != nil {
		c.Set(apis.RealtimeClientAuthKey, auth)
	}
	return c
}

func subWith(options string) string {
	return "chat_messages/*?options=" + url.QueryEscape(options)
}

func TestPocketBaseOptions(t *testing.T) {
	cases := []struct {
		name, sub string
		want      map[string]string
		options   bool
	}{
		{"none", "chat_messages/*", map[string]string{}, false},
		{"filter", subWith(`{"query":{"filter":"text ~ 'a'"}}`), map[string]string{"filter": "text ~ 'a'"}, true},
		{"empty filter", subWith(`{"query":{"filter":""}}`), map[string]string{"filter": ""}, false},
		{"other query keys only", subWith(`{"query":{"page":2,"x":"y"}}`), map[string]string{"page": "2", "x": "y"}, false},
		{"a number as PocketBase casts it", subWith(`{"query":{"fields":1}}`), map[string]string{"fields": "1"}, true},
		{"malformed", "chat_messages/*?options=" + url.QueryEscape(`{"query":`), map[string]string{}, false},
		{"expand and fields", subWith(`{"query":{"expand":"room","fields":"id"}}`), map[string]string{"expand": "room", "fields": "id"}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := pocketBaseOptions(tc.sub)
			if len(got.Query) != len(tc.want) {
				t.Fatalf("query = %v, want %v", got.Query, tc.want)
			}
			for k, v := range tc.want {
				if got.Query[k] != v {
					t.Fatalf("query = %v, want %v", got.Query, tc.want)
				}
			}
			if hasOptions(got) != tc.options {
				t.Fatalf("hasOptions = %v, want %v", !tc.options, tc.options)
			}
		})
	}
}

func TestOptionsRender(t *testing.T) {
	w := newOptionsWorld(t)
	hello := w.message(t, "hello there")
	gone := w.message(t, "hello, soon deleted")
	goneEvent := event(t, "delete", gone)
	if err := w.app.Delete(gone); err != nil {
		t.Fatal(err)
	}
	bobs := connection(w.bob)

	cases := []struct {
		name  string
		query map[string]string
		conn  subscriptions.Client
		ev    chat.Event
		// want: nil when nothing is delivered, else checked on the record.
		want func(t *testing.T, record map[string]any)
	}{
		{"filter true", map[string]string{"filter": "text ~ 'hello'"}, bobs, event(t, "create", hello), textIs("hello there")},
		{"filter false", map[string]string{"filter": "text ~ 'bye'"}, bobs, event(t, "create", hello), nil},
		{"filter through a relation", map[string]string{"filter": "room.name = 'group'"}, bobs, event(t, "update", hello), textIs("hello there")},
		{"filter with the subscriber", map[string]string{"filter": "room.chat_room_users_via_room.user ?= '" + w.bob.Id + "'"}, bobs, event(t, "create", hello), textIs("hello there")},
		{"filter on the event's values, not the row's", map[string]string{"filter": "text = 'as published'"}, bobs, withText(t, event(t, "update", hello), "as published"), textIs("as published")},
		{"delete, filter true", map[string]string{"filter": "text ~ 'soon'"}, bobs, goneEvent, textIs("hello, soon deleted")},
		{"delete, filter false", map[string]string{"filter": "text ~ 'bye'"}, bobs, goneEvent, nil},
		{"superuser-only filter fields", map[string]string{"filter": "@request.auth.id != ''"}, bobs, event(t, "create", hello), nil},
		{"@collection in the filter", map[string]string{"filter": "@collection.chat_rooms.id != ''"}, bobs, event(t, "create", hello), nil},
		{"an invalid filter", map[string]string{"filter": "nope ~ 'x'"}, bobs, event(t, "create", hello), nil},
		{"expand: what the user may view", map[string]string{"expand": "room,user"}, bobs, event(t, "create", hello), func(t *testing.T, record map[string]any) {
			expand, _ := record["expand"].(map[string]any)
			if room, _ := expand["room"].(map[string]any); room["name"] != "group" {
				t.Fatalf("expand.room = %v", expand["room"])
			}
			if user, ok := expand["user"]; ok { // users may view only themselves
				t.Fatalf("expand.user = %v", user)
			}
		}},
		{"fields", map[string]string{"fields": "id,text"}, bobs, event(t, "create", hello), keysAre("id", "text")},
		{"fields on a delete", map[string]string{"fields": "id"}, bobs, goneEvent, keysAre("id")},
		{"fields with expand", map[string]string{"expand": "room", "fields": "expand.room.name"}, bobs, event(t, "create", hello), keysAre("expand")},
		{"a connection whose auth was unset", map[string]string{"fields": "id"}, connection(nil), event(t, "create", hello), nil},
		{"a connection of another user", map[string]string{"fields": "id"}, connection(w.alice), event(t, "create", hello), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := &subOptions{app: w.app, user: w.bob.Id, query: tc.query}
			msg, ok := o.queue(tc.conn, "sub", tc.ev).resolve()
			if tc.want == nil {
				if ok {
					t.Fatalf("delivered %s", msg.Data)
				}
				return
			}
			if !ok {
				t.Fatal("nothing delivered")
			}
			var data struct {
				Action string         `json:"action"`
				Record map[string]any `json:"record"`
			}
			if err := json.Unmarshal(msg.Data, &data); err != nil {
				t.Fatal(err)
			}
			if msg.Name != "sub" || data.Action != tc.ev.Action {
				t.Fatalf("message %s: %s", msg.Name, msg.Data)
			}
			tc.want(t, data.Record)
		})
	}
}

func textIs(text string) func(t *testing.T, record map[string]any) {
	return func(t *testing.T, record map[string]any) {
		t.Helper()
		if record["text"] != text {
			t.Fatalf("text = %v, want %q", record["text"], text)
		}
	}
}

func keysAre(keys ...string) func(t *testing.T, record map[string]any) {
	return func(t *testing.T, record map[string]any) {
		t.Helper()
		var got []string
		for k := range record {
			got = append(got, k)
		}
		slices.Sort(got)
		if !slices.Equal(got, keys) {
			t.Fatalf("record keys = %v, want %v", got, keys)
		}
	}
}

// withText is ev with the record's text changed, as a later edit would leave
// the row while the event still carries the published state.
func withText(t *testing.T, ev chat.Event, text string) chat.Event {
	t.Helper()
	var record map[string]any
	if err := json.Unmarshal(ev.Record, &record); err != nil {
		t.Fatal(err)
	}
	record["text"] = text
	ev.Record, _ = json.Marshal(record)
	return ev
}

func TestOptionsCursorInPayload(t *testing.T) {
	w := newOptionsWorld(t)
	ev := event(t, "create", w.message(t, "hi"))
	ev.Cursor = "c42"
	o := &subOptions{app: w.app, user: w.bob.Id, query: map[string]string{"fields": "id"}}
	msg, ok := o.render(connection(w.bob), "sub", ev)
	var data map[string]any
	if !ok || json.Unmarshal(msg.Data, &data) != nil || data["cursor"] != "c42" {
		t.Fatalf("payload %s", msg.Data)
	}
}

// TestHubRendersOptionsInOrder: a client's events keep their order whether
// they were ready or rendered by its pump, and what a filter refuses is
// simply not sent.
func TestHubRendersOptionsInOrder(t *testing.T) {
	w := newOptionsWorld(t)
	hub := NewHub(NewLocalBroker(), slog.Default())
	pb := connection(w.bob)
	filtered := subWith(`{"query":{"filter":"text ~ 'yes'"}}`)
	hub.set(pb, w.bob.Id, nil, map[string][]stockSub{migrations.Messages: {
		{name: "chat_messages/*", recordID: "*"},
		{name: filtered, recordID: "*", options: &subOptions{app: w.app, user: w.bob.Id, query: map[string]string{"filter": "text ~ 'yes'"}}},
	}}, []string{w.room.Id})

	var want []string
	for i, text := range []string{"yes 1", "no 2", "yes 3", "no 4", "yes 5"} {
		m := w.message(t, text)
		hub.Deliver(event(t, "create", m))
		want = append(want, "chat_messages/*:"+text)
		if i%2 == 0 {
			want = append(want, filtered+":"+text)
		}
	}
	var got []string
	for len(got) < len(want) {
		select {
		case msg := <-pb.Channel():
			var data struct {
				Record struct {
					Text string `json:"text"`
				} `json:"record"`
			}
			_ = json.Unmarshal(msg.Data, &data)
			got = append(got, msg.Name+":"+data.Record.Text)
		case <-time.After(5 * time.Second):
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
	select {
	case msg := <-pb.Channel():
		t.Fatalf("unexpected %s %s", msg.Name, msg.Data)
	case <-time.After(200 * time.Millisecond):
	}
}

func TestPlanSubscriptionsWithOptions(t *testing.T) {
	w := newOptionsWorld(t)
	superusers, err := w.app.FindCollectionByNameOrId(core.CollectionNameSuperusers)
	if err != nil {
		t.Fatal(err)
	}
	admin := core.NewRecord(superusers)
	admin.SetEmail("admin@example.com")
	admin.SetPassword("password-admin")
	if err := w.app.Save(admin); err != nil {
		t.Fatal(err)
	}
	filtered := subWith(`{"query":{"filter":"text ~ 'a'"}}`)
	malformed := "chat_messages/*?options=" + url.QueryEscape(`{"query":`)
	subs := []string{filtered, "chat_messages/*", malformed, "users/*?options=" + url.QueryEscape(`{"query":{"filter":"id != ''"}}`)}

	cases := []struct {
		name             string
		auth             *core.Record
		stock            []bool // per chat_messages stock subscription: has options
		rest             []string
		pocketBaseServed bool
	}{
		{"member", w.bob, []bool{true, false, false}, subs[3:], false},
		{"guest: chat subscriptions dropped, options or not", nil, nil, subs[3:], false},
		{"superuser: PocketBase's", admin, nil, subs, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := &core.RequestEvent{App: w.app, Auth: tc.auth}
			plan, err := planSubscriptions(e, w.settings, subs)
			if err != nil {
				t.Fatal(err)
			}
			var stock []bool
			for _, s := range plan.Stock[migrations.Messages] {
				stock = append(stock, s.options != nil)
			}
			if !slices.Equal(stock, tc.stock) || !slices.Equal(plan.Rest, tc.rest) || plan.pocketBaseServed != tc.pocketBaseServed {
				t.Fatalf("stock options %v, rest %v, PocketBase-served %v", stock, plan.Rest, plan.pocketBaseServed)
			}
			if len(stock) > 0 && plan.Stock[migrations.Messages][0].options.query["filter"] != "text ~ 'a'" {
				t.Fatalf("options %+v", plan.Stock[migrations.Messages][0].options)
			}
		})
	}
}

func TestRefuseNodeOptions(t *testing.T) {
	w := newOptionsWorld(t)
	messages, err := w.app.FindCollectionByNameOrId(migrations.Messages)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		sub     string
		refused bool
	}{
		{"chat_messages/*", false},
		{"chat/rooms/" + w.room.Id, false},
		{subWith(`{"query":{"filter":"text ~ 'a'"}}`), true},
		{subWith(`{"query":{"expand":"room"}}`), true},
		{subWith(`{"query":{"fields":"id"}}`), true},
		{messages.Id + "/*?options=" + url.QueryEscape(`{"query":{"fields":"id"}}`), true},
		{"chat_rooms/" + w.room.Id + "?options=" + url.QueryEscape(`{"query":{"expand":"created_by"}}`), true},
		{subWith(`{"query":{"filter":""}}`), false},
		{"chat_messages/*?options=" + url.QueryEscape(`{"query":`), false},
		{"users/*?options=" + url.QueryEscape(`{"query":{"filter":"id != ''"}}`), false},
	}
	for _, tc := range cases {
		err := refuseNodeOptions(w.app, []string{"chat_messages/*", tc.sub})
		if (err != nil) != tc.refused {
			t.Errorf("%s: refused = %v, want %v", tc.sub, err, tc.refused)
		}
	}
}
