package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pocketbase/pocketbase/tools/subscriptions"

	"github.com/pbchat/pbchat/chatmodule"
	"github.com/pbchat/pbchat/internal/chattest"
	"github.com/pbchat/pbchat/realtime"
)

// BenchmarkSubscriptionOptions: what a message post costs while thousands of
// connections that will never receive it hold chat subscriptions with
// filter/expand/fields options (the attack of issue 10: such subscriptions
// used to send every chat record event through PocketBase's check of every
// connected client). One app; the scenarios run in order, side by side:
//
//   - none: no connection at all (the baseline);
//   - crowd-options: 3,000 guest and 3,000 signed-in outsider connections,
//     each on chat_messages/* with filter, expand and fields options;
//   - crowd-plain: the same 6,000 connections on chat_messages/* without;
//   - members: only the room's 10 connected members, each subscribed with
//     options (half with a filter every bench message matches, half with one
//     none does): the baseline of the two rows below;
//   - members+crowd-options, members+crowd-plain: both together.
//
// Per message: the POST's wall time (HTTP, as the author), the time until the
// last matching member has the event, and the process CPU from the POST until
// the members are served (20 ms settle included). Members with a matching
// filter must get every message, expanded and trimmed; nobody else anything.
func BenchmarkSubscriptionOptions(b *testing.B) {
	f := newOptionsBench(b)
	var rows []optionsRow
	for _, scenario := range []string{"none", "crowd-options", "crowd-plain", "members", "members+crowd-options", "members+crowd-plain"} {
		b.Run(scenario, func(b *testing.B) {
			f.arrange(b, scenario)
			rows = append(rows, f.measure(b, scenario))
		})
	}
	if len(rows) > 0 {
		fmt.Print(optionsTable(rows)) // a parent benchmark's log is not printed
	}
}

const (
	optionsMembers   = 10
	optionsGuests    = 3000
	optionsOutsiders = 3000
)

type optionsBench struct {
	b        *testing.B // the parent benchmark: connections live across scenarios
	env      *chattest.Env
	author   *chattest.User
	members  []*chattest.User
	room     string
	matching string // the members' subscription whose filter every bench message matches

	delivered chan time.Time // a matching member got a bench message, rendered as asked
	wrong     atomic.Int64   // events that must not exist: to a guest, an outsider, a non-matching filter; or untrimmed

	memberClients []subscriptions.Client
	membersOn     bool
	crowd         []crowdClient
	crowdSubs     string // "", "plain" or "options": what the crowd is subscribed with
}

type crowdClient struct {
	client subscriptions.Client
	user   *chattest.User // nil: a guest
}

type optionsRow struct {
	scenario, connections string
	postP50, memberP50    time.Duration
	cpu                   time.Duration
}

// crowdOptions is what every guest and outsider subscribes with.
var crowdOptions = "chat_messages/*?options=" + url.QueryEscape(`{"query":{"filter":"text ~ 'bench'","expand":"room,user","fields":"id,text,expand.room.name"}}`)

func newOptionsBench(b *testing.B) *optionsBench {
	b.Helper()
	start := time.Now()
	env := chattest.NewWithSetup(b, chatmodule.Config{RateLimits: chatmodule.RateLimits{Disabled: true}}, cheapPasswords)
	f := &optionsBench{b: b, env: env, author: env.NewUser("author"), delivered: make(chan time.Time, optionsMembers*4)}
	res := env.Do(f.author, http.MethodPost, "/api/collections/chat_rooms/records", map[string]any{"type": "group", "name": "bench room"})
	if res.Status != http.StatusOK {
		b.Fatalf("create room: %d %s", res.Status, res)
	}
	f.room = res.Str("id")
	for i := 0; i < optionsMembers; i++ {
		m := env.NewUser(fmt.Sprintf("member%d", i))
		if res := env.Do(f.author, http.MethodPost, "/api/collections/chat_room_users/records", map[string]any{"room": f.room, "user": m.ID()}); res.Status != http.StatusOK {
			b.Fatalf("add member: %d %s", res.Status, res)
		}
		f.members = append(f.members, m)
	}
	f.matching = "chat_messages/*?options=" + url.QueryEscape(`{"query":{"filter":"room = '`+f.room+`' && text ~ 'bench'","expand":"room,user","fields":"id,text,expand.room.name"}}`)
	for i := 0; i < optionsGuests+optionsOutsiders; i++ {
		var user *chattest.User
		if i >= optionsGuests {
			user = env.NewUser(fmt.Sprintf("outsider%d", i-optionsGuests))
		}
		f.crowd = append(f.crowd, crowdClient{user: user})
	}
	fmt.Printf("%d users in %s\n", 1+optionsMembers+optionsOutsiders, time.Since(start).Round(time.Second))
	return f
}

// register adds a client to the app's broker as GET /api/realtime does;
// onMessage sees everything it is sent.
func (f *optionsBench) register(onMessage func(subscriptions.Message)) subscriptions.Client {
	client := realtime.NewClient()
	f.env.App.SubscriptionsBroker().Register(client)
	f.b.Cleanup(func() { f.env.App.SubscriptionsBroker().Unregister(client.Id()) })
	go func() {
		for msg := range client.Channel() {
			onMessage(msg)
		}
	}()
	return client
}

// subscribe replaces a client's subscriptions as POST /api/realtime does.
func (f *optionsBench) subscribe(client subscriptions.Client, user *chattest.User, subs ...string) error {
	res := f.env.Do(user, http.MethodPost, "/api/realtime", map[string]any{"clientId": client.Id(), "subscriptions": subs})
	if res.Status != http.StatusNoContent {
		return fmt.Errorf("subscribe: %d %s", res.Status, res)
	}
	return nil
}

// arrange connects and subscribes what scenario needs; connections stay
// registered across scenarios, subscribed with nothing when out of one.
func (f *optionsBench) arrange(b *testing.B, scenario string) {
	wantMembers := strings.HasPrefix(scenario, "members")
	crowd := ""
	if i := strings.Index(scenario, "crowd-"); i >= 0 {
		crowd = scenario[i+len("crowd-"):]
	}
	if wantMembers != f.membersOn {
		for i, m := range f.members {
			if f.memberClients == nil || len(f.memberClients) <= i {
				matching := i%2 == 0
				f.memberClients = append(f.memberClients, f.register(func(msg subscriptions.Message) {
					if !matching || msg.Name != f.matching || !servedAsAsked(msg.Data) {
						f.wrong.Add(1)
						return
					}
					f.delivered <- time.Now()
				}))
			}
			subs := []string{}
			if wantMembers && i%2 == 0 {
				subs = []string{f.matching}
			} else if wantMembers {
				subs = []string{"chat_messages/*?options=" + url.QueryEscape(`{"query":{"filter":"text ~ 'no such text'","expand":"room"}}`)}
			}
			if err := f.subscribe(f.memberClients[i], m, subs...); err != nil {
				b.Fatal(err)
			}
		}
		f.membersOn = wantMembers
	}
	if crowd == f.crowdSubs {
		return
	}
	start := time.Now()
	subs := map[string][]string{"": {}, "plain": {"chat_messages/*"}, "options": {crowdOptions}}[crowd]
	for i := range f.crowd {
		if f.crowd[i].client == nil {
			f.crowd[i].client = f.register(func(subscriptions.Message) { f.wrong.Add(1) })
		}
	}
	var wg sync.WaitGroup
	var failed atomic.Value
	work := make(chan int)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if err := f.subscribe(f.crowd[i].client, f.crowd[i].user, subs...); err != nil {
					failed.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	for i := range f.crowd {
		work <- i
	}
	close(work)
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	f.crowdSubs = crowd
	// None of it is left to PocketBase: its broadcaster has nothing to walk.
	for _, c := range f.crowd {
		if left := c.client.Subscriptions(); len(left) > 0 {
			b.Fatalf("a crowd connection left to PocketBase: %v", left)
		}
	}
	b.Logf("%d connections subscribed to %v in %s", len(f.crowd), subs, time.Since(start).Round(time.Millisecond))
	// Let the subscribe requests' after-work (request logs, garbage) finish:
	// the measure is a post among idle connections.
	time.Sleep(2 * time.Second)
	runtime.GC()
}

// servedAsAsked: the matching members' events carry only id, text and the
// expanded room's name.
func servedAsAsked(data []byte) bool {
	var event struct {
		Action string `json:"action"`
		Record struct {
			ID     string `json:"id"`
			Text   string `json:"text"`
			Expand struct {
				Room map[string]any `json:"room"`
			} `json:"expand"`
			Room *string `json:"room"`
		} `json:"record"`
	}
	if json.Unmarshal(data, &event) != nil {
		return false
	}
	r := event.Record
	return event.Action == "create" && r.ID != "" && strings.HasPrefix(r.Text, "bench ") &&
		r.Room == nil && len(r.Expand.Room) == 1 && r.Expand.Room["name"] == "bench room"
}

func (f *optionsBench) measure(b *testing.B, scenario string) optionsRow {
	want := 0
	if f.membersOn {
		want = optionsMembers / 2
	}
	var posts, served []time.Duration
	var cpu time.Duration
	post := func(i int) {
		time.Sleep(20 * time.Millisecond) // the previous message's work is done
		body, _ := json.Marshal(map[string]any{"room": f.room, "text": fmt.Sprintf("bench %s %d", scenario, i)})
		req, _ := http.NewRequest(http.MethodPost, f.env.Server.URL+"/api/collections/chat_messages/records", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", f.author.Token)
		cpu0 := processCPU()
		start := time.Now()
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		res.Body.Close()
		posted := time.Since(start)
		if res.StatusCode != http.StatusOK {
			b.Fatalf("post: %d", res.StatusCode)
		}
		var last time.Time
		for got := 0; got < want; got++ {
			select {
			case last = <-f.delivered:
			case <-time.After(30 * time.Second):
				b.Fatalf("%s: only %d of %d matching members got message %d", scenario, got, want, i)
			}
		}
		time.Sleep(20 * time.Millisecond) // the non-matching members' filters run too
		cpu += processCPU() - cpu0
		posts = append(posts, posted)
		if want > 0 {
			served = append(served, last.Sub(start))
		}
	}
	for i := 0; i < 3; i++ { // warm-up: caches and prepared statements
		post(-1 - i)
	}
	cpu = 0
	posts, served = nil, nil
	n := 0
	for b.Loop() {
		post(n)
		n++
	}
	if wrong := f.wrong.Load(); wrong > 0 {
		b.Fatalf("%d events reached a guest, an outsider or a non-matching filter, or were not as asked", wrong)
	}
	row := optionsRow{scenario: scenario, postP50: Percentile(posts, 50), cpu: cpu / time.Duration(n)}
	if len(served) > 0 {
		row.memberP50 = Percentile(served, 50)
	}
	connections := 0
	if f.membersOn {
		connections += optionsMembers
	}
	if f.crowdSubs != "" {
		connections += len(f.crowd)
	}
	row.connections = fmt.Sprint(connections)
	b.ReportMetric(float64(row.postP50.Microseconds())/1000, "post-p50-ms")
	b.ReportMetric(float64(row.cpu.Microseconds())/1000, "cpu-ms/msg")
	if row.memberP50 > 0 {
		b.ReportMetric(float64(row.memberP50.Microseconds())/1000, "members-p50-ms")
	}
	return row
}

// optionsTable is the Markdown table BENCHMARKS.md shows, with each row's
// ratios to "none" and, for rows with members, to "members".
func optionsTable(rows []optionsRow) string {
	find := func(name string) *optionsRow {
		for i := range rows {
			if rows[i].scenario == name {
				return &rows[i]
			}
		}
		return nil
	}
	ratio := func(r, base *optionsRow) string {
		if base == nil || base.postP50 <= 0 || base.cpu <= 0 {
			return "–"
		}
		return fmt.Sprintf("%.2f×, %.2f×", float64(r.postP50)/float64(base.postP50), float64(r.cpu)/float64(base.cpu))
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d.Microseconds())/1000) }
	var s strings.Builder
	s.WriteString("| scenario | connections | POST p50 ms | last matching member p50 ms | CPU ms/msg | ÷ none (POST, CPU) | ÷ members (POST, CPU) |\n|---|---|---|---|---|---|---|\n")
	for i := range rows {
		r := &rows[i]
		member, byMembers := "–", "–"
		if r.memberP50 > 0 {
			member = ms(r.memberP50)
			byMembers = ratio(r, find("members"))
		}
		fmt.Fprintf(&s, "| %s | %s | %s | %s | %s | %s | %s |\n", r.scenario, r.connections, ms(r.postP50), member, ms(r.cpu), ratio(r, find("none")), byMembers)
	}
	return s.String()
}
