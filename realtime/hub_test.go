package realtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pocketbase/pocketbase/tools/subscriptions"

	"github.com/pbchat/pbchat/internal/chat"
)

var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// msgEvent is a message.created in room, as the hooks publish it.
func msgEvent(room, id string) chat.Event {
	return chat.Event{
		Room: room, Type: chat.EventMessageCreated,
		Collection: chat.CollectionMessages, Action: "create", RecordID: id,
		Record: json.RawMessage(fmt.Sprintf(`{"id":%q,"room":%q}`, id, room)),
		Cursor: "c-" + id,
	}
}

func memberEvent(eventType, room, user string) chat.Event {
	action := map[string]string{chat.EventMemberJoined: "create", chat.EventMemberLeft: "delete"}[eventType]
	return chat.Event{
		Room: room, Type: eventType, Member: user,
		Collection: chat.CollectionRoomUsers, Action: action, RecordID: "m-" + room + "-" + user,
		Record: json.RawMessage(fmt.Sprintf(`{"id":"m-%s-%s","room":%q,"user":%q}`, room, user, room, user)),
	}
}

func roomDeleted(room string) chat.Event {
	return chat.Event{Room: room, Type: chat.EventRoomDeleted, Collection: chat.CollectionRooms, Action: "delete",
		RecordID: room, Record: json.RawMessage(fmt.Sprintf(`{"id":%q}`, room))}
}

func revocation(user string) chat.Event {
	return chat.Event{Type: chat.EventAuthRevoked, Users: []string{user}}
}

// bobsPlan: bob's topic of r1 and his stock subscription to chat_messages,
// as a member of r1 and r2.
func bobsPlan() Plan {
	return Plan{
		User:   "bob",
		Topics: map[string][]string{"r1": {"chat/rooms/r1"}},
		Stock:  map[string][]StockSub{chat.CollectionMessages: {{Name: "chat_messages/*", RecordID: "*"}}},
		Rooms:  []string{"r1", "r2"},
	}
}

// received collects what a client gets, keyed "subscription:record id".
func received(t *testing.T, pb subscriptions.Client, within time.Duration) []string {
	t.Helper()
	var got []string
	deadline := time.After(within)
	for {
		select {
		case msg, ok := <-pb.Channel():
			if !ok {
				return got
			}
			var data struct {
				Record struct {
					ID string `json:"id"`
				} `json:"record"`
			}
			if err := json.Unmarshal(msg.Data, &data); err != nil {
				t.Fatalf("payload %s: %v", msg.Data, err)
			}
			got = append(got, msg.Name+":"+data.Record.ID)
		case <-deadline:
			return got
		}
	}
}

// TestHubMembershipChangesWhilePlanned: a membership change whose event
// reaches the hub after a plan was computed and before it is installed is
// not undone by the install.
func TestHubMembershipChangesWhilePlanned(t *testing.T) {
	all := []string{"chat/rooms/r1:x1", "chat_messages/*:x1", "chat_messages/*:x2"}
	tests := []struct {
		name    string
		between []chat.Event // delivered between the plan and its install
		install error
		want    []string // what bob gets of a message in r1, r2 then r3
	}{
		{"nothing", nil, nil, all},
		{"bob left r1", []chat.Event{memberEvent(chat.EventMemberLeft, "r1", "bob")}, nil, []string{"chat_messages/*:x2"}},
		{"carol left r1", []chat.Event{memberEvent(chat.EventMemberLeft, "r1", "carol")}, nil, all},
		{"r1 deleted", []chat.Event{roomDeleted("r1")}, nil, []string{"chat_messages/*:x2"}},
		{"bob joined r3", []chat.Event{memberEvent(chat.EventMemberJoined, "r3", "bob")}, nil, append(slices.Clone(all), "chat_messages/*:x3")},
		{"bob joined and left r3", []chat.Event{memberEvent(chat.EventMemberJoined, "r3", "bob"), memberEvent(chat.EventMemberLeft, "r3", "bob")}, nil, all},
		{"bob left and rejoined r2", []chat.Event{memberEvent(chat.EventMemberLeft, "r2", "bob"), memberEvent(chat.EventMemberJoined, "r2", "bob")}, nil, all},
		{"bob's token revoked", []chat.Event{revocation("bob")}, errClientGone, nil},
		{"carol's token revoked", []chat.Event{revocation("carol")}, nil, all},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hub := NewHub(NewLocalBroker(), quietLogger)
			pb := NewClient()
			since := hub.ticket()
			plan := bobsPlan() // as read from the database after the ticket
			for _, ev := range tt.between {
				hub.Deliver(ev)
			}
			if err := hub.install(pb, plan, since); !errors.Is(err, tt.install) {
				t.Fatalf("install: %v, want %v", err, tt.install)
			}
			hub.Deliver(msgEvent("r1", "x1"))
			hub.Deliver(msgEvent("r2", "x2"))
			hub.Deliver(msgEvent("r3", "x3"))
			if got := received(t, pb, 300*time.Millisecond); !slices.Equal(got, tt.want) {
				t.Fatalf("bob got %v, want %v", got, tt.want)
			}
			if tt.install != nil && !pb.IsDiscarded() {
				t.Fatal("a revoked user's connection stays open")
			}
		})
	}
}

// TestHubRemovalBeforeTicket: what changed before the ticket is the plan's
// business (it read the database after): the install takes the plan as is.
func TestHubRemovalBeforeTicket(t *testing.T) {
	hub := NewHub(NewLocalBroker(), quietLogger)
	pb := NewClient()
	hub.Deliver(memberEvent(chat.EventMemberLeft, "r1", "bob"))
	since := hub.ticket()
	if err := hub.install(pb, bobsPlan(), since); err != nil {
		t.Fatal(err)
	}
	hub.Deliver(msgEvent("r1", "x1"))
	if got := received(t, pb, 300*time.Millisecond); len(got) != 2 {
		t.Fatalf("got %v", got)
	}
}

func TestHubPlanStaleAfterManyRemovals(t *testing.T) {
	hub := NewHub(NewLocalBroker(), quietLogger)
	since := hub.ticket()
	for i := 0; i <= membershipLogSize; i++ {
		hub.Deliver(memberEvent(chat.EventMemberLeft, fmt.Sprintf("room%d", i), "carol"))
	}
	if err := hub.install(NewClient(), bobsPlan(), since); !errors.Is(err, errPlanStale) {
		t.Fatalf("install after %d removals: %v", membershipLogSize+1, err)
	}
}

// TestHubNeverRegistersAGoneClient: a connection that ended while its
// subscribe request was in flight is not registered (nor followed).
func TestHubNeverRegistersAGoneClient(t *testing.T) {
	tests := []struct {
		name string
		end  func(hub *Hub, pb subscriptions.Client)
	}{
		{"discarded", func(_ *Hub, pb subscriptions.Client) { pb.Discard() }},
		{"removed", func(hub *Hub, pb subscriptions.Client) { hub.remove(pb) }},
		{"removed then discarded", func(hub *Hub, pb subscriptions.Client) { hub.remove(pb); pb.Discard() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			broker := &recordingBroker{}
			hub := NewHub(broker, quietLogger)
			pb := NewClient()
			since := hub.ticket()
			tt.end(hub, pb)
			if err := hub.install(pb, bobsPlan(), since); !errors.Is(err, errClientGone) {
				t.Fatalf("install: %v", err)
			}
			hub.set(pb, "bob", bobsPlan().Topics, bobsPlan().stockSubs(), bobsPlan().Rooms)
			hub.mu.RLock()
			clients, rooms := len(hub.clients), len(hub.byRoom)
			hub.mu.RUnlock()
			if clients != 0 || rooms != 0 || len(broker.calls()) != 0 {
				t.Fatalf("registered: %d clients, %d rooms, broker %v", clients, rooms, broker.calls())
			}
		})
	}
}

func TestHubDisconnectsASlowClient(t *testing.T) {
	broker := &recordingBroker{}
	hub := NewHub(broker, quietLogger)
	slow, fast := NewClient(), NewClient()
	hub.set(slow, "bob", nil, bobsPlan().stockSubs(), []string{"r1"})
	hub.set(fast, "carol", nil, bobsPlan().stockSubs(), []string{"r1"})

	arrived := make(chan struct{}, 2*outboxSize)
	go func() { // carol reads everything, bob nothing
		for range fast.Channel() {
			arrived <- struct{}{}
		}
	}()
	// Carol takes each event before the next is sent (however busy the
	// machine), bob none: only his outbox fills.
	total := outboxSize + 10
	for i := range total {
		hub.Deliver(msgEvent("r1", fmt.Sprint(i)))
		select {
		case <-arrived:
		case <-time.After(10 * time.Second):
			t.Fatalf("the client that keeps up got %d of %d events", i, total)
		}
	}
	if !slow.IsDiscarded() {
		t.Fatal("a client whose outbox is full stays connected")
	}
	if fast.IsDiscarded() {
		t.Fatal("a client that keeps up was disconnected")
	}
	// The hub forgot bob and still follows r1 for carol.
	hub.mu.RLock()
	clients, inR1 := len(hub.clients), len(hub.byRoom["r1"])
	hub.mu.RUnlock()
	if clients != 1 || inR1 != 1 || !slices.Equal(broker.calls(), []string{"follow r1"}) {
		t.Fatalf("%d clients, %d in r1, broker calls %v", clients, inR1, broker.calls())
	}
	fast.Discard()
}

func TestHubPayloadsCarryTheCursor(t *testing.T) {
	hub := NewHub(NewLocalBroker(), quietLogger)
	pb := NewClient()
	hub.set(pb, "bob", bobsPlan().Topics, bobsPlan().stockSubs(), bobsPlan().Rooms)

	hub.Deliver(msgEvent("r1", "x1"))
	typing := chat.Event{Room: "r1", Type: chat.EventTyping, Record: json.RawMessage(`{"user":"alice"}`)}
	hub.Deliver(typing)

	want := []map[string]any{
		{"type": chat.EventMessageCreated, "record": map[string]any{"id": "x1", "room": "r1"}, "cursor": "c-x1"},
		{"action": "create", "record": map[string]any{"id": "x1", "room": "r1"}, "cursor": "c-x1"},
		{"type": chat.EventTyping, "record": map[string]any{"user": "alice"}}, // not logged: no cursor
	}
	for i, w := range want {
		select {
		case msg := <-pb.Channel():
			var got map[string]any
			if err := json.Unmarshal(msg.Data, &got); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(w) {
				t.Fatalf("payload %d = %s, want %v", i, msg.Data, w)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("payload %d missing", i)
		}
	}
}

func TestHubRevocationDisconnectsTheUsersClients(t *testing.T) {
	hub := NewHub(NewLocalBroker(), quietLogger)
	bob1, bob2, carol := NewClient(), NewClient(), NewClient()
	hub.set(bob1, "bob", bobsPlan().Topics, nil, nil)
	hub.set(bob2, "bob", nil, bobsPlan().stockSubs(), []string{"r1"})
	hub.set(carol, "carol", nil, bobsPlan().stockSubs(), []string{"r1"})

	hub.Deliver(revocation("bob"))
	if !bob1.IsDiscarded() || !bob2.IsDiscarded() || carol.IsDiscarded() {
		t.Fatalf("discarded: bob %v %v, carol %v", bob1.IsDiscarded(), bob2.IsDiscarded(), carol.IsDiscarded())
	}
	hub.Deliver(msgEvent("r1", "x1"))
	if got := received(t, carol, 300*time.Millisecond); !slices.Equal(got, []string{"chat_messages/*:x1"}) {
		t.Fatalf("carol got %v", got)
	}
}

func TestHubLostDisconnects(t *testing.T) {
	hub := NewHub(NewLocalBroker(), quietLogger)
	inR1, inR2 := NewClient(), NewClient()
	hub.set(inR1, "bob", map[string][]string{"r1": {"chat/rooms/r1"}}, nil, nil)
	hub.set(inR2, "carol", map[string][]string{"r2": {"chat/rooms/r2"}}, nil, nil)

	hub.Lost("r1")
	if !inR1.IsDiscarded() || inR2.IsDiscarded() {
		t.Fatalf("Lost(r1) discarded r1's %v, r2's %v", inR1.IsDiscarded(), inR2.IsDiscarded())
	}
	hub.Lost("")
	if !inR2.IsDiscarded() {
		t.Fatal("Lost(\"\") kept a client")
	}
}

// recordingBroker records broker calls and checks that none is made while
// the hub's lock is held.
type recordingBroker struct {
	LocalBroker
	hub       *Hub
	mu        sync.Mutex
	log       []string
	underMu   bool
	followErr error
}

func (b *recordingBroker) Listen(l Listener) {
	b.LocalBroker.Listen(l)
	if h, ok := l.(*Hub); ok {
		b.hub = h
	}
}

func (b *recordingBroker) record(call string) {
	locked := !b.hub.mu.TryLock()
	if !locked {
		b.hub.mu.Unlock()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.log = append(b.log, call)
	b.underMu = b.underMu || locked
}

func (b *recordingBroker) calls() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.log)
}

func (b *recordingBroker) Follow(room string, catchUp bool) error {
	if catchUp {
		b.record("catch up " + room)
	} else {
		b.record("follow " + room)
	}
	return b.followErr
}

func (b *recordingBroker) Unfollow(room string) { b.record("unfollow " + room) }

func TestHubTellsTheBrokerOutsideItsLock(t *testing.T) {
	broker := &recordingBroker{}
	hub := NewHub(broker, quietLogger)
	topicOnly, stock := NewClient(), NewClient()
	hub.set(topicOnly, "carol", map[string][]string{"r1": {"chat/rooms/r1"}}, nil, nil)
	hub.set(stock, "bob", nil, bobsPlan().stockSubs(), []string{"r1"})

	hub.Deliver(memberEvent(chat.EventMemberJoined, "r2", "bob"))   // bob's stock subscription follows r2 from its join
	hub.Deliver(memberEvent(chat.EventMemberJoined, "r3", "carol")) // a topic needs a new subscribe request
	hub.Deliver(memberEvent(chat.EventMemberLeft, "r1", "bob"))
	hub.remove(topicOnly)
	hub.remove(stock)

	want := []string{"follow r1", "catch up r2", "unfollow r1", "unfollow r2"}
	if got := broker.calls(); !slices.Equal(got, want) {
		t.Fatalf("broker calls %v, want %v", got, want)
	}
	if broker.underMu {
		t.Fatal("a broker call was made under the hub's lock")
	}
}

func TestHubJoinedRoomCatchUpFailureDisconnects(t *testing.T) {
	broker := &recordingBroker{followErr: errors.New("writer unreachable")}
	hub := NewHub(broker, quietLogger)
	bob, carol := NewClient(), NewClient()
	hub.set(bob, "bob", nil, bobsPlan().stockSubs(), nil)
	hub.set(carol, "carol", nil, bobsPlan().stockSubs(), nil)

	hub.Deliver(memberEvent(chat.EventMemberJoined, "r2", "bob"))
	if !bob.IsDiscarded() || carol.IsDiscarded() {
		t.Fatalf("after a failed catch-up: bob discarded %v, carol %v", bob.IsDiscarded(), carol.IsDiscarded())
	}
}
