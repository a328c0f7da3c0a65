package realtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/pbchat/pbchat/internal/chat"
)

func startNATS(t *testing.T) chat.NATSConfig {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	server, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: port, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go server.Start()
	if !server.ReadyForConnections(5 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(server.Shutdown)
	return chat.NATSConfig{URL: fmt.Sprintf("nats://127.0.0.1:%d", port), SubjectPrefix: "test"}
}

// TestNATSNodeFollowsRoomsJoinedWithTheirNextEvents: a node learns of a
// membership on the subject every node receives and subscribes to the room
// only then. The room's events published right after the membership reach
// the member anyway (the writer's catch-up), once each, in order.
func TestNATSNodeFollowsRoomsJoinedWithTheirNextEvents(t *testing.T) {
	config := startNATS(t)
	writer, err := ConnectNATS(config, "writer", quietLogger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(writer.Close)
	node, err := ConnectNATSNode(config, "node", quietLogger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(node.Close)
	hub := NewHub(node, quietLogger)
	writerHub := NewHub(writer, quietLogger)

	const rooms = 20
	stock := map[string][]stockSub{
		chat.CollectionMessages:  {{name: "chat_messages/*", recordID: "*"}},
		chat.CollectionRoomUsers: {{name: "chat_room_users/*", recordID: "*"}},
	}
	// bob is in no room yet, on the node and on the writer; carol already
	// follows every room by its topic, so some catch-ups meet events that
	// arrive on the room's subject too.
	bob, bobOnWriter, carol := NewClient(), NewClient(), NewClient()
	hub.set(bob, "bob", nil, stock, nil)
	writerHub.set(bobOnWriter, "bob", nil, stock, nil)
	topics := map[string][]string{}
	for i := range rooms {
		if i%2 == 0 {
			topics[fmt.Sprint("r", i)] = []string{fmt.Sprint("chat/rooms/r", i)}
		}
	}
	hub.set(carol, "carol", topics, nil, nil)
	if err := node.conn.Flush(); err != nil {
		t.Fatal(err)
	}

	var want, wantCarol []string
	for i := range rooms {
		room := fmt.Sprint("r", i)
		if err := writer.Publish(memberEvent(chat.EventMemberJoined, room, "bob")); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			wantCarol = append(wantCarol, "chat/rooms/"+room+":m-"+room+"-bob")
		}
		for j := range 3 {
			id := fmt.Sprintf("x%d-%d", i, j)
			if err := writer.Publish(msgEvent(room, id)); err != nil {
				t.Fatal(err)
			}
			want = append(want, "chat_messages/*:"+id)
			if i%2 == 0 {
				wantCarol = append(wantCarol, "chat/rooms/"+room+":"+id)
			}
		}
	}
	for name, pb := range map[string]*quietClient{"node": bob.(*quietClient), "writer": bobOnWriter.(*quietClient)} {
		var got []string
		deadline := time.After(10 * time.Second)
		for len(got) < len(want) {
			select {
			case msg := <-pb.Channel():
				if msg.Name == "chat_messages/*" {
					got = append(got, msg.Name+":"+recordID(t, msg.Data))
				}
			case <-deadline:
				t.Fatalf("bob on the %s got %d of %d messages: %v", name, len(got), len(want), got)
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("bob on the %s got\n%v\nwant\n%v", name, got, want)
		}
	}
	if got := received(t, carol, 500*time.Millisecond); !slices.Equal(got, wantCarol) {
		t.Fatalf("carol got\n%v\nwant\n%v", got, wantCarol)
	}
}

func recordID(t *testing.T, data []byte) string {
	var payload struct {
		Record struct {
			ID string `json:"id"`
		} `json:"record"`
	}
	if err := json.Unmarshal(data, &payload); err != nil {
		t.Fatal(err)
	}
	return payload.Record.ID
}

// TestNATSWriterReplay: the writer answers a catch-up with the room's
// events after the one asked about, or refuses when it no longer holds them
// all (the node then has the member resynchronise).
func TestNATSWriterReplay(t *testing.T) {
	b := &NATSBroker{origin: "o"}
	for i := 1; i <= replayWindow+10; i++ {
		room := "other"
		if i%100 == 0 {
			room = "r"
		}
		b.stamp(room, []byte(`{"record":null}`))
	}
	last := uint64(replayWindow + 10)
	tests := []struct {
		name     string
		req      replayRequest
		complete bool
		events   int
	}{
		{"recent", replayRequest{Origin: "o", Room: "r", After: last - 250}, true, 3},
		{"whole window", replayRequest{Origin: "o", Room: "r", After: last - replayWindow}, true, replayWindow/100 + 1},
		{"nothing since", replayRequest{Origin: "o", Room: "r", After: last}, true, 0},
		{"older than the window", replayRequest{Origin: "o", Room: "r", After: last - replayWindow - 1}, false, 0},
		{"another writer process", replayRequest{Origin: "p", Room: "r", After: last - 10}, false, 0},
		{"from the future", replayRequest{Origin: "o", Room: "r", After: last + 1}, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			answer := b.replayFor(tt.req)
			if answer.Complete != tt.complete || len(answer.Events) != tt.events {
				t.Fatalf("complete %v with %d events, want %v with %d", answer.Complete, len(answer.Events), tt.complete, tt.events)
			}
			for _, raw := range answer.Events {
				var env envelope
				if err := json.Unmarshal(raw, &env); err != nil || env.Origin != "o" || env.Seq <= tt.req.After || env.Seq%100 != 0 {
					t.Fatalf("event %s: %v", raw, err)
				}
			}
		})
	}
}

// lostRecorder is a Listener that records what it is told was lost.
type lostRecorder struct {
	mu   sync.Mutex
	lost []string
}

func (l *lostRecorder) Deliver(chat.Event) {}
func (l *lostRecorder) Lost(room string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lost = append(l.lost, room)
}

func (l *lostRecorder) has(room string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Contains(l.lost, room)
}

// TestNATSNodeRetriesSubscriptions: a subscription NATS refuses is retried
// until it works (and the hub hears that events were missed meanwhile) or
// the room is no longer wanted.
func TestNATSNodeRetriesSubscriptions(t *testing.T) {
	b := newNATSNodeBroker(chat.NATSConfig{SubjectPrefix: "test"}, quietLogger)
	b.retryMin, b.retryMax = 5*time.Millisecond, 40*time.Millisecond
	t.Cleanup(func() { close(b.done) })
	var mu sync.Mutex
	attempts := map[string]int{}
	failFirst := map[string]int{"test.users": 2, "test.room.r1": 3, "test.room.r2": 1 << 30}
	b.subscribe = func(subject string, _ chan *nats.Msg) (*nats.Subscription, error) {
		mu.Lock()
		defer mu.Unlock()
		attempts[subject]++
		if attempts[subject] <= failFirst[subject] {
			return nil, errors.New("refused")
		}
		return &nats.Subscription{Subject: subject}, nil
	}
	count := func(subject string) int {
		mu.Lock()
		defer mu.Unlock()
		return attempts[subject]
	}
	listener := &lostRecorder{}
	b.Listen(listener)
	if err := b.Follow("r1", false); err != nil {
		t.Fatalf("follow: %v", err)
	}
	if err := b.Follow("r2", true); err == nil {
		t.Fatal("a catch-up without a subscription succeeded")
	}

	deadline := time.Now().Add(10 * time.Second)
	for !listener.has("") || !listener.has("r1") {
		if time.Now().After(deadline) {
			t.Fatalf("lost %v after attempts %v", listener.lost, attempts)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := count("test.room.r1"); n != 4 {
		t.Fatalf("r1 subscribed after %d attempts, want 4", n)
	}

	b.Unfollow("r2")
	stopped := count("test.room.r2")
	time.Sleep(10 * b.retryMax)
	if n := count("test.room.r2"); n > stopped+1 {
		t.Fatalf("r2 retried %d more times after Unfollow", n-stopped)
	}
	if listener.has("r2") {
		t.Fatal("r2 reported although never subscribed")
	}
}

// TestNATSWriterReportsFailedPublishes: events the writer failed to publish
// (NATS away past its client's buffer) are announced once NATS is back, and
// every node disconnects its clients to resynchronise.
func TestNATSWriterReportsFailedPublishes(t *testing.T) {
	config := startNATS(t)
	writer, err := ConnectNATS(config, "writer", quietLogger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(writer.Close)
	node, err := ConnectNATSNode(config, "node", quietLogger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(node.Close)
	hub := NewHub(node, quietLogger)
	bob := NewClient()
	hub.set(bob, "bob", map[string][]string{"r1": {"chat/rooms/r1"}}, nil, nil)
	if err := node.conn.Flush(); err != nil {
		t.Fatal(err)
	}

	writer.reportFailures() // nothing failed: nothing to say
	if err := writer.Publish(msgEvent("r1", "x1")); err != nil {
		t.Fatal(err)
	}
	if got := received(t, bob, 500*time.Millisecond); !slices.Equal(got, []string{"chat/rooms/r1:x1"}) || bob.IsDiscarded() {
		t.Fatalf("bob got %v (discarded %v)", got, bob.IsDiscarded())
	}

	writer.failed.Store(true)
	writer.reportFailures()
	deadline := time.Now().Add(5 * time.Second)
	for !bob.IsDiscarded() {
		if time.Now().After(deadline) {
			t.Fatal("a node kept its clients after the writer failed to publish")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
