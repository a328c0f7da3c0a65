package notify

import (
	"maps"
	"strings"
	"testing"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tests"

	"github.com/pbchat/pbchat/internal/chat"
	"github.com/pbchat/pbchat/migrations"
)

// fanOutFixture: alice, bob, carol and dave share a room; pbchat's schema
// and the outbox hook, no notifier running (the test steps it).
type fanOutFixture struct {
	app   *tests.TestApp
	users map[string]*core.Record
	room  string
}

func newFanOutFixture(t *testing.T) *fanOutFixture {
	t.Helper()
	app, err := tests.NewTestApp(t.TempDir())
	if err != nil {
		t.Fatalf("test app: %v", err)
	}
	t.Cleanup(app.Cleanup)
	settings, err := chat.Settings{}.WithDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if err := migrations.Run(app, settings); err != nil {
		t.Fatal(err)
	}
	app.OnRecordCreate(migrations.Messages).BindFunc(writeOutbox)

	f := &fanOutFixture{app: app, users: map[string]*core.Record{}}
	for _, name := range []string{"alice", "bob", "carol", "dave"} {
		user := f.record(t, "users", map[string]any{"email": name + "@example.com", "name": name})
		user.SetPassword("password-" + name)
		f.save(t, user)
		f.users[name] = user
	}
	f.room = f.create(t, migrations.Rooms, map[string]any{"type": "group", "created_by": f.users["alice"].Id}).Id
	for _, user := range f.users {
		f.create(t, migrations.RoomUsers, map[string]any{"room": f.room, "user": user.Id})
	}
	return f
}

func (f *fanOutFixture) record(t *testing.T, collection string, fields map[string]any) *core.Record {
	t.Helper()
	c, err := f.app.FindCollectionByNameOrId(collection)
	if err != nil {
		t.Fatal(err)
	}
	r := core.NewRecord(c)
	r.Load(fields)
	return r
}

func (f *fanOutFixture) save(t *testing.T, r *core.Record) {
	t.Helper()
	if err := f.app.Save(r); err != nil {
		t.Fatalf("save %s: %v", r.Collection().Name, err)
	}
}

func (f *fanOutFixture) create(t *testing.T, collection string, fields map[string]any) *core.Record {
	t.Helper()
	r := f.record(t, collection, fields)
	f.save(t, r)
	return r
}

// pending is each pending row's user name and mention flag.
func (f *fanOutFixture) pending(t *testing.T) map[string]bool {
	t.Helper()
	var rows []struct {
		User    string `db:"user"`
		Mention bool   `db:"mention"`
	}
	if err := f.app.DB().Select("user", "mention").From(migrations.PendingTable).All(&rows); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, r := range rows {
		name := r.User
		for n, u := range f.users {
			if u.Id == r.User {
				name = n
			}
		}
		if _, twice := got[name]; twice {
			t.Fatalf("two pending rows for %s", name)
		}
		got[name] = r.Mention
	}
	return got
}

// connected is a Presence of the members who have the room open.
type connected map[string]bool

func (c connected) Connected(user, _ string) bool { return c[user] }

func TestFanOutPendingRowsOnlyForReachableMembers(t *testing.T) {
	for _, tc := range []struct {
		name      string
		push      []string // members with a push subscription
		webhook   bool     // one in Config
		dashboard string   // a chat_webhooks row: "on", "off" (disabled)
		muted     []string
		mentions  []string
		connected []string
		deleted   bool // the message is deleted before its fan-out
		want      map[string]bool
	}{
		{name: "away subscriber", push: []string{"bob"}, want: map[string]bool{"bob": false}},
		{name: "no target and no webhook", want: map[string]bool{}},
		{name: "author's own subscription", push: []string{"alice"}, want: map[string]bool{}},
		{name: "webhook in Config: every away member", webhook: true, want: map[string]bool{"bob": false, "carol": false, "dave": false}},
		{name: "dashboard webhook: every away member", dashboard: "on", want: map[string]bool{"bob": false, "carol": false, "dave": false}},
		{name: "disabled dashboard webhook", dashboard: "off", push: []string{"carol"}, want: map[string]bool{"carol": false}},
		{name: "muted subscriber", push: []string{"bob", "carol"}, muted: []string{"carol"}, want: map[string]bool{"bob": false}},
		{name: "muted and mentioned", push: []string{"bob", "carol"}, muted: []string{"bob", "carol"}, mentions: []string{"carol"}, want: map[string]bool{"carol": true}},
		{name: "mentioned subscriber", push: []string{"bob", "dave"}, mentions: []string{"dave"}, want: map[string]bool{"bob": false, "dave": true}},
		{name: "connected subscriber", push: []string{"bob", "dave"}, connected: []string{"dave"}, want: map[string]bool{"bob": false}},
		{name: "webhook, muted and connected", webhook: true, muted: []string{"carol"}, connected: []string{"dave"}, want: map[string]bool{"bob": false}},
		{name: "deleted message", push: []string{"bob"}, webhook: true, deleted: true, want: map[string]bool{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFanOutFixture(t)
			settings, err := chat.Settings{}.WithDefaults()
			if err != nil {
				t.Fatal(err)
			}
			if tc.webhook {
				settings.Notifications.Webhooks = []chat.WebhookConfig{{URL: "http://127.0.0.1:9/hook", Secret: "s"}}
			}
			if tc.dashboard != "" {
				f.create(t, migrations.Webhooks, map[string]any{"url": "http://127.0.0.1:9/dash", "secret": "s", "disabled": tc.dashboard == "off"})
			}
			for i, name := range tc.push {
				f.create(t, migrations.PushSubscriptions, map[string]any{"user": f.users[name].Id,
					"endpoint": "http://127.0.0.1:9/push/" + name, "p256dh": strings.Repeat("k", 87), "auth": "a" + string(rune('0'+i))})
			}
			for _, name := range tc.muted {
				member, err := f.app.FindFirstRecordByFilter(migrations.RoomUsers, "room = {:room} && user = {:user}",
					dbx.Params{"room": f.room, "user": f.users[name].Id})
				if err != nil {
					t.Fatal(err)
				}
				member.Set("muted", true)
				f.save(t, member)
			}
			presence := connected{}
			for _, name := range tc.connected {
				presence[f.users[name].Id] = true
			}
			var mentions []string
			for _, name := range tc.mentions {
				mentions = append(mentions, f.users[name].Id)
			}
			message := f.create(t, migrations.Messages, map[string]any{"room": f.room, "user": f.users["alice"].Id, "text": "hi", "mentions": mentions})
			if tc.deleted {
				if err := f.app.Delete(message); err != nil {
					t.Fatal(err)
				}
			}

			n := &notifier{app: f.app, settings: settings, presence: presence}
			if err := n.fanOut(); err != nil {
				t.Fatalf("fanOut: %v", err)
			}
			if got := f.pending(t); !maps.Equal(got, tc.want) {
				t.Fatalf("pending rows (user: mention) %v, want %v", got, tc.want)
			}
			var outbox int
			if err := f.app.DB().Select("count(*)").From(migrations.OutboxTable).Row(&outbox); err != nil {
				t.Fatal(err)
			}
			if outbox != 0 {
				t.Fatalf("%d outbox rows left after the fan-out", outbox)
			}
		})
	}
}

// A member's push subscriptions are found through an index, not by
// scanning every subscription once per member.
func TestReachableMembersUsePushSubscriptionsIndex(t *testing.T) {
	f := newFanOutFixture(t)
	var plan []struct {
		Detail string `db:"detail"`
	}
	if err := f.app.DB().NewQuery("EXPLAIN QUERY PLAN " + reachableSQL).Bind(dbx.Params{"room": f.room, "author": "x"}).All(&plan); err != nil {
		t.Fatal(err)
	}
	var details []string
	for _, p := range plan {
		details = append(details, p.Detail)
	}
	all := strings.Join(details, "; ")
	if !strings.Contains(all, "INDEX idx_chat_push_subscriptions_user_endpoint") || strings.Contains(all, "SCAN "+migrations.PushSubscriptions) {
		t.Fatalf("reachable members plan does not read the subscriptions by user through an index: %s", all)
	}
}
