package realtime

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pocketbase/pocketbase/tools/subscriptions"

	"github.com/pbchat/pbchat/internal/chat"
)

// sinkLog records what a hub reports, as "user:on" / "user:off".
type sinkLog struct {
	mu  sync.Mutex
	got []string
}

func (s *sinkLog) SetOnline(user string, online bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	state := "off"
	if online {
		state = "on"
	}
	s.got = append(s.got, user+":"+state)
}

func (s *sinkLog) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.got
	s.got = nil
	return out
}

// TestHubReportsFirstAndLastConnection: a hub reports a user when their
// first chat connection registers and when their last one goes, and
// nothing in between (a second connection, a resubscription).
func TestHubReportsFirstAndLastConnection(t *testing.T) {
	presenceOnly := Plan{User: "bob", Presence: []string{chat.PresenceTopic}}
	nothing := Plan{User: "bob"}
	type step struct {
		do   func(h *Hub, conns []subscriptions.Client)
		want []string
	}
	install := func(i int, plan Plan) func(h *Hub, conns []subscriptions.Client) {
		return func(h *Hub, conns []subscriptions.Client) {
			if err := h.install(conns[i], plan, h.ticket()); err != nil {
				t.Fatalf("install: %v", err)
			}
		}
	}
	remove := func(i int) func(h *Hub, conns []subscriptions.Client) {
		return func(h *Hub, conns []subscriptions.Client) { h.remove(conns[i]) }
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"one connection", []step{
			{install(0, bobsPlan()), []string{"bob:on"}},
			{remove(0), []string{"bob:off"}},
		}},
		{"two connections", []step{
			{install(0, bobsPlan()), []string{"bob:on"}},
			{install(1, presenceOnly), nil},
			{remove(0), nil},
			{remove(1), []string{"bob:off"}},
		}},
		{"resubscribing", []step{
			{install(0, bobsPlan()), []string{"bob:on"}},
			{install(0, presenceOnly), nil},
			{install(0, bobsPlan()), nil},
			{install(0, nothing), []string{"bob:off"}},
		}},
		{"no chat subscription", []step{
			{install(0, nothing), nil},
			{remove(0), nil},
		}},
		{"revoked", []step{
			{install(0, presenceOnly), []string{"bob:on"}},
			{func(h *Hub, _ []subscriptions.Client) { h.Deliver(revocation("bob")) }, []string{"bob:off"}},
		}},
		{"events lost", []step{
			{install(0, bobsPlan()), []string{"bob:on"}},
			{func(h *Hub, _ []subscriptions.Client) { h.Lost("") }, []string{"bob:off"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hub := NewHub(NewLocalBroker(), quietLogger)
			sink := &sinkLog{}
			hub.ReportPresence(sink)
			conns := []subscriptions.Client{NewClient(), NewClient()}
			for i, s := range tt.steps {
				s.do(hub, conns)
				if got := sink.take(); !slices.Equal(got, s.want) {
					t.Fatalf("step %d: reported %v, want %v", i, got, s.want)
				}
			}
		})
	}
}

// TestHubDeliversPresenceToItsSubscribers: a presence event reaches the
// chat/presence subscriptions of the users it is addressed to, nobody else.
func TestHubDeliversPresenceToItsSubscribers(t *testing.T) {
	hub := NewHub(NewLocalBroker(), quietLogger)
	alice, aliceStock, carol := NewClient(), NewClient(), NewClient()
	hub.install(alice, Plan{User: "alice", Presence: []string{chat.PresenceTopic}}, hub.ticket())
	hub.install(aliceStock, bobsPlan(), hub.ticket()) // a connection without chat/presence
	hub.install(carol, Plan{User: "carol", Presence: []string{chat.PresenceTopic}}, hub.ticket())

	hub.Deliver(chat.Event{Type: chat.EventPresenceOnline, Users: []string{"alice"},
		Record: json.RawMessage(`{"id":"bob","user":"bob","online":true,"last_online":""}`)})

	if got := received(t, alice, 200*time.Millisecond); !slices.Equal(got, []string{chat.PresenceTopic + ":bob"}) {
		t.Fatalf("alice got %v", got)
	}
	for name, pb := range map[string]subscriptions.Client{"a connection without chat/presence": aliceStock, "carol": carol} {
		if got := received(t, pb, 50*time.Millisecond); len(got) > 0 {
			t.Fatalf("%s got %v", name, got)
		}
	}
}

// TestPresenceTableAggregatesSources: a user is online while any source
// holds them; a node's users go when it says so or when it has been silent
// for the expiry.
func TestPresenceTableAggregatesSources(t *testing.T) {
	start := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	expiry := 45 * time.Second
	type step struct {
		do   func(p *Presence)
		want []string // changes, "user:on" / "user:off"
	}
	node := func(id, user string, online bool, at time.Duration) func(p *Presence) {
		return func(p *Presence) { p.report(presenceReport{Node: id, User: user, Online: online}, start.Add(at)) }
	}
	heartbeat := func(id string, at time.Duration, users ...string) func(p *Presence) {
		return func(p *Presence) { p.report(presenceReport{Node: id, All: users}, start.Add(at)) }
	}
	local := func(user string, online bool) func(p *Presence) {
		return func(p *Presence) { p.Local().SetOnline(user, online) }
	}
	expire := func(at time.Duration) func(p *Presence) {
		return func(p *Presence) { p.expire(start.Add(at)) }
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"writer only", []step{
			{local("bob", true), []string{"bob:on"}},
			{expire(time.Hour), nil}, // the writer's own connections never expire
			{local("bob", false), []string{"bob:off"}},
		}},
		{"writer and a node", []step{
			{local("bob", true), []string{"bob:on"}},
			{node("n1", "bob", true, 0), nil},
			{local("bob", false), nil},
			{node("n1", "bob", false, time.Second), []string{"bob:off"}},
		}},
		{"a silent node expires", []step{
			{node("n1", "bob", true, 0), []string{"bob:on"}},
			{node("n2", "carol", true, 0), []string{"carol:on"}},
			{heartbeat("n1", 30*time.Second, "bob"), nil},
			{expire(60 * time.Second), []string{"carol:off"}},
			{expire(80 * time.Second), []string{"bob:off"}},
		}},
		{"a heartbeat brings back a lost change", []step{
			{heartbeat("n1", 0, "bob", "carol"), []string{"bob:on", "carol:on"}},
		}},
		{"a stopping node", []step{
			{node("n1", "bob", true, 0), []string{"bob:on"}},
			{func(p *Presence) { p.report(presenceReport{Node: "n1", Gone: true}, start) }, []string{"bob:off"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewPresence(expiry, quietLogger)
			for i, s := range tt.steps {
				s.do(p)
				var got []string
				for _, c := range p.queue {
					got = append(got, fmt.Sprintf("%s:%s", c.User, map[bool]string{true: "on", false: "off"}[c.Online]))
				}
				slices.Sort(got)
				p.queue = nil
				if !slices.Equal(got, s.want) {
					t.Fatalf("step %d: changes %v, want %v", i, got, s.want)
				}
			}
		})
	}
}

// TestPresenceTableHandsChangesInOrder: Start hands the changes to the
// handler one at a time, in order; Close waits for those queued.
func TestPresenceTableHandsChangesInOrder(t *testing.T) {
	p := NewPresence(time.Minute, quietLogger)
	var got []string
	var mu sync.Mutex
	p.Start(func(c PresenceChange) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, fmt.Sprintf("%s:%v", c.User, c.Online))
	})
	for i := 0; i < 50; i++ {
		p.Local().SetOnline("bob", i%2 == 0)
	}
	p.Close()
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 50 || got[0] != "bob:true" || got[49] != "bob:false" {
		t.Fatalf("changes handed: %v", got)
	}
	for i := 1; i < len(got); i++ {
		if got[i] == got[i-1] {
			t.Fatalf("out of order at %d: %v", i, got)
		}
	}
}
