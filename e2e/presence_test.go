package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pbchat/pbchat/chatmodule"
	"github.com/pbchat/pbchat/internal/chat"
	"github.com/pbchat/pbchat/internal/chattest"
	"github.com/pbchat/pbchat/realtime"
)

// presenceOf matches a chat/presence event of type about user.
func presenceOf(eventType, user string) func(chattest.Event) bool {
	return func(ev chattest.Event) bool {
		return ev.Type() == eventType && ev.Record()["user"] == user
	}
}

func subscribePresence(t *testing.T, conn *chattest.SSE, extra ...string) {
	t.Helper()
	if res := conn.Subscribe(append([]string{chat.PresenceTopic}, extra...)...); res.Status != http.StatusNoContent {
		t.Fatalf("subscribe to %s: %d %s", chat.PresenceTopic, res.Status, res)
	}
}

type presenceAnswer struct {
	Users map[string]struct {
		Online     bool   `json:"online"`
		LastOnline string `json:"last_online"`
	} `json:"users"`
}

func getPresence(t *testing.T, env *chattest.Env, user *chattest.User, query string) presenceAnswer {
	t.Helper()
	res := env.Do(user, http.MethodGet, "/api/chat/presence"+query, nil)
	if res.Status != http.StatusOK {
		t.Fatalf("GET /api/chat/presence%s: %d %s", query, res.Status, res)
	}
	var answer presenceAnswer
	if err := json.Unmarshal(res.Body, &answer); err != nil {
		t.Fatalf("presence answer %s: %v", res, err)
	}
	return answer
}

// expectFirstPresence fails unless the next chat/presence event conn gets
// matches: nothing addressed elsewhere came before it.
func expectFirstPresence(t *testing.T, conn *chattest.SSE, match func(chattest.Event) bool) {
	t.Helper()
	for {
		ev, ok := conn.Next(wait)
		if !ok {
			t.Fatal("no presence event")
		}
		if ev.Name != chat.PresenceTopic {
			continue
		}
		if !match(ev) {
			t.Fatalf("unexpected presence event %v", ev.Data)
		}
		return
	}
}

// TestPresenceOneProcess: a user's connection makes them online for the
// users who share a room with them, in the route and as events; closing
// it makes them offline with last_online; a user who shares no room hears
// and sees nothing of them.
func TestPresenceOneProcess(t *testing.T) {
	f := newRealtimeFixture(t) // alice and bob share a group; carol does not
	dave := f.env.NewUser("dave")
	f.addMember(t, f.carol, f.carolsRoom, dave)

	alice := f.env.Connect(f.alice)
	subscribePresence(t, alice)
	carol := f.env.Connect(f.carol)
	subscribePresence(t, carol)

	bob := f.env.Connect(f.bob)
	if res := bob.Subscribe("chat_messages/*"); res.Status != http.StatusNoContent { // any chat subscription
		t.Fatalf("bob subscribe: %d %s", res.Status, res)
	}
	online := alice.Expect(t, chat.PresenceTopic, presenceOf(chat.EventPresenceOnline, f.bob.ID()), wait)
	if online.Record()["online"] != true {
		t.Fatalf("online event: %v", online.Data)
	}
	if _, logged := online.Data["cursor"]; logged {
		t.Fatalf("a presence event carries a cursor: %v", online.Data)
	}

	all := getPresence(t, f.env, f.alice, "")
	if len(all.Users) != 1 || !all.Users[f.bob.ID()].Online {
		t.Fatalf("alice's presence: %+v, want bob online only", all.Users)
	}
	some := getPresence(t, f.env, f.alice, fmt.Sprintf("?users=%s,%s,%s,nobody", f.bob.ID(), f.carol.ID(), dave.ID()))
	if _, ok := some.Users[f.bob.ID()]; len(some.Users) != 1 || !ok {
		t.Fatalf("alice asking for bob, carol, dave and nobody: %+v, want bob only", some.Users)
	}
	if strangers := getPresence(t, f.env, f.carol, "?users="+f.bob.ID()); len(strangers.Users) != 0 {
		t.Fatalf("carol sees bob: %+v", strangers.Users)
	}

	bob.Close()
	offline := alice.Expect(t, chat.PresenceTopic, presenceOf(chat.EventPresenceOffline, f.bob.ID()), wait)
	last, _ := offline.Record()["last_online"].(string)
	if offline.Record()["online"] != false || last == "" {
		t.Fatalf("offline event: %v", offline.Data)
	}
	after := getPresence(t, f.env, f.alice, "?users="+f.bob.ID()).Users[f.bob.ID()]
	if after.Online || after.LastOnline != last {
		t.Fatalf("bob after leaving: %+v, want offline, last online %s", after, last)
	}

	// Carol heard nothing of bob: her first presence event is her roommate's.
	daveConn := f.env.Connect(dave)
	subscribePresence(t, daveConn)
	expectFirstPresence(t, carol, presenceOf(chat.EventPresenceOnline, dave.ID()))

	ids := make([]string, 501)
	for i := range ids {
		ids[i] = fmt.Sprintf("u%d", i)
	}
	tooMany := f.env.Do(f.alice, http.MethodGet, "/api/chat/presence?users="+strings.Join(ids, ","), nil)
	data, _ := tooMany.JSON()["data"].(map[string]any)
	if tooMany.Status != http.StatusBadRequest || data["users"] == nil {
		t.Fatalf("501 ids: want 400 naming users, got %d %s", tooMany.Status, tooMany)
	}
	if res := f.env.Connect(nil).Subscribe(chat.PresenceTopic); res.Status != http.StatusForbidden {
		t.Fatalf("guest subscribing to %s: want 403, got %d", chat.PresenceTopic, res.Status)
	}
	if res := f.env.Do(nil, http.MethodGet, "/api/chat/presence", nil); res.Status != http.StatusUnauthorized {
		t.Fatalf("anonymous presence: want 401, got %d", res.Status)
	}
}

// TestPresenceAcrossNodes: a writer and two realtime nodes over a real NATS
// server. A user connected to one node is online for a roommate connected to
// another; closing the connection, a node's stop and a node's silent death
// (no more reports: gone after the expiry) make them offline.
func TestPresenceAcrossNodes(t *testing.T) {
	natsPort := freePort(t)
	nats := startNATS(t, natsPort)
	t.Cleanup(nats.Shutdown)
	natsConfig := chat.NATSConfig{URL: fmt.Sprintf("nats://127.0.0.1:%d", natsPort), SubjectPrefix: "test", PresenceTimeout: time.Second}
	f := newFixtureWith(t, chatmodule.Config{NATS: natsConfig})
	dave := f.env.NewUser("dave")
	f.addMember(t, f.carol, f.carolsRoom, dave)

	nodeA := startPresenceNode(t, f.env.Server.URL, natsConfig)
	nodeB, crashB := startCrashableNode(t, f.env.Server.URL, natsConfig)

	alice := f.env.ConnectAt(nodeA.url, f.alice)
	subscribePresence(t, alice)
	carol := f.env.Connect(f.carol) // on the writer
	subscribePresence(t, carol)

	bob := f.env.ConnectAt(nodeB, f.bob)
	subscribePresence(t, bob, "chat/rooms/"+f.group)
	alice.Expect(t, chat.PresenceTopic, presenceOf(chat.EventPresenceOnline, f.bob.ID()), wait)
	if got := getPresence(t, f.env, f.alice, "?users="+f.bob.ID()).Users[f.bob.ID()]; !got.Online {
		t.Fatalf("bob on node B, seen by alice: %+v", got)
	}
	if got := getPresence(t, f.env, f.bob, "?users="+f.alice.ID()).Users[f.alice.ID()]; !got.Online {
		t.Fatalf("alice on node A, seen by bob: %+v", got)
	}

	daveConn := f.env.ConnectAt(nodeA.url, dave)
	subscribePresence(t, daveConn)
	expectFirstPresence(t, carol, presenceOf(chat.EventPresenceOnline, dave.ID()))

	// Closing the connection.
	bob.Close()
	alice.Expect(t, chat.PresenceTopic, presenceOf(chat.EventPresenceOffline, f.bob.ID()), wait)

	// Heartbeats keep bob online past the expiry; node B's death ends it.
	bob = f.env.ConnectAt(nodeB, f.bob)
	subscribePresence(t, bob)
	alice.Expect(t, chat.PresenceTopic, presenceOf(chat.EventPresenceOnline, f.bob.ID()), wait)
	time.Sleep(2 * natsConfig.PresenceExpiry())
	if got := getPresence(t, f.env, f.alice, "?users="+f.bob.ID()).Users[f.bob.ID()]; !got.Online {
		t.Fatalf("bob, still connected to node B after the expiry: %+v", got)
	}
	crashB()
	alice.Expect(t, chat.PresenceTopic, presenceOf(chat.EventPresenceOffline, f.bob.ID()), wait)

	// Node A stops: its users are offline, for a roommate on the writer.
	nodeA.stop()
	carol.Expect(t, chat.PresenceTopic, presenceOf(chat.EventPresenceOffline, dave.ID()), wait)
}

// startPresenceNode runs a realtime node as `pbchat realtime` does, with natsConfig.
func startPresenceNode(t *testing.T, writer string, natsConfig chat.NATSConfig) *testNode {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	ctx, cancel := context.WithCancel(context.Background())
	n := &testNode{addr: addr, url: "http://" + addr, cancel: cancel, done: make(chan error, 1)}
	go func() {
		n.done <- chatmodule.RunRealtimeNode(ctx, realtime.NodeConfig{Writer: writer, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, natsConfig, addr)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		res, err := http.Get(n.url + "/api/health")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s not healthy", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(n.stop)
	return n
}

// startCrashableNode runs a realtime node whose crash (the returned func)
// cuts it from NATS without a word to the writer.
func startCrashableNode(t *testing.T, writer string, natsConfig chat.NATSConfig) (url string, crash func()) {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	broker, err := realtime.ConnectNATSNode(natsConfig, "pbchat-realtime-crashable", logger)
	if err != nil {
		t.Fatal(err)
	}
	node, err := realtime.NewNode(realtime.NodeConfig{Writer: writer, Broker: broker, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	server := httptest.NewServer(node.Handler())
	t.Cleanup(func() {
		server.CloseClientConnections()
		server.Close()
		node.Close()
		broker.Close()
	})
	return server.URL, broker.Close
}
