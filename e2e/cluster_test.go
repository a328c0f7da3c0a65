package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/pbchat/pbchat/chatmodule"
	"github.com/pbchat/pbchat/internal/chat"
	"github.com/pbchat/pbchat/internal/chattest"
	"github.com/pbchat/pbchat/realtime"
)

// cluster is one writer (the app with the database) and two realtime nodes
// joined by a real NATS server, all on loopback.
type cluster struct {
	*realtimeFixture
	nats     *natsserver.Server
	natsPort int
	nodes    []*testNode
}

type testNode struct {
	addr   string
	url    string
	cancel context.CancelFunc
	done   chan error
}

func startNATS(t *testing.T, port int) *natsserver.Server {
	t.Helper()
	server, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: port, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatalf("nats server: %v", err)
	}
	go server.Start()
	if !server.ReadyForConnections(5 * time.Second) {
		t.Fatal("nats server not ready")
	}
	return server
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func newCluster(t *testing.T) *cluster {
	natsPort := freePort(t)
	nats := startNATS(t, natsPort)
	t.Cleanup(nats.Shutdown)
	natsConfig := chat.NATSConfig{URL: fmt.Sprintf("nats://127.0.0.1:%d", natsPort), SubjectPrefix: "test"}

	env := chattest.New(t, chatmodule.Config{NATS: natsConfig})
	f := &realtimeFixture{env: env, alice: env.NewUser("alice"), bob: env.NewUser("bob"), carol: env.NewUser("carol")}
	f.group = f.createRoom(t, f.alice, "group")
	f.addMember(t, f.alice, f.group, f.bob)
	f.carolsRoom = f.createRoom(t, f.carol, "group")

	c := &cluster{realtimeFixture: f, nats: nats, natsPort: natsPort}
	f.endpoints = []string{env.Server.URL}
	for i := 0; i < 2; i++ {
		c.nodes = append(c.nodes, c.startNode(t, fmt.Sprintf("127.0.0.1:%d", freePort(t))))
		f.endpoints = append(f.endpoints, c.nodes[i].url)
	}
	return c
}

func (c *cluster) natsConfig() chat.NATSConfig {
	return chat.NATSConfig{URL: fmt.Sprintf("nats://127.0.0.1:%d", c.natsPort), SubjectPrefix: "test"}
}

// startNode runs a realtime node as `pbchat realtime` does, on addr.
func (c *cluster) startNode(t *testing.T, addr string) *testNode {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	n := &testNode{addr: addr, url: "http://" + addr, cancel: cancel, done: make(chan error, 1)}
	go func() {
		n.done <- chatmodule.RunRealtimeNode(ctx, realtime.NodeConfig{Writer: c.env.Server.URL}, c.natsConfig(), addr)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		res, err := http.Get(n.url + "/api/health")
		if err == nil && res.StatusCode == http.StatusOK {
			res.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s not healthy", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(n.stop)
	return n
}

func (n *testNode) stop() {
	n.cancel()
	<-n.done
	n.done <- nil // stop is idempotent
}

func TestClusterDeliversAcrossNodesAndOnlyToMembers(t *testing.T) {
	c := newCluster(t)
	dave := c.env.NewUser("dave")
	c.addMember(t, c.alice, c.group, dave)
	topic := "chat/rooms/" + c.group

	bob := c.env.ConnectAt(c.nodes[0].url, c.bob)
	daveConn := c.env.ConnectAt(c.nodes[1].url, dave)
	for _, conn := range []*chattest.SSE{bob, daveConn} {
		if res := conn.Subscribe(topic, "chat_messages/*"); res.Status != http.StatusNoContent {
			t.Fatalf("subscribe on a node: %d %s", res.Status, res)
		}
	}
	var carols []*chattest.SSE
	for _, node := range c.nodes {
		carol := c.env.ConnectAt(node.url, c.carol)
		if res := carol.Subscribe(topic); res.Status != http.StatusForbidden {
			t.Fatalf("non-member topic on a node: want 403, got %d %s", res.Status, res)
		}
		if res := carol.Subscribe("chat_messages/*"); res.Status != http.StatusNoContent {
			t.Fatalf("carol stock subscribe: %d %s", res.Status, res)
		}
		carols = append(carols, carol)
	}

	id := c.post(t, c.alice, c.group, "to both nodes")
	for _, conn := range []*chattest.SSE{bob, daveConn} {
		conn.Expect(t, topic, func(ev chattest.Event) bool { return ev.Type() == "message.created" && ev.RecordID() == id }, wait)
		conn.Expect(t, "chat_messages/*", byID(id), wait)
	}
	sentinel := c.post(t, c.carol, c.carolsRoom, "carol's own")
	for _, carol := range carols {
		if first, ok := carol.Next(wait); !ok || first.RecordID() != sentinel {
			t.Fatalf("carol's first event on a node should be her own message, got %v", first.Data)
		}
	}
}

func TestClusterForwardsSubscribeToTheNodeHoldingTheClient(t *testing.T) {
	c := newCluster(t)
	bob := c.env.ConnectAt(c.nodes[0].url, c.bob)
	// The subscribe request lands on the other node, as behind a load balancer.
	res := c.env.DoAt(c.nodes[1].url, c.bob, http.MethodPost, "/api/realtime", map[string]any{
		"clientId": bob.ClientID, "subscriptions": []string{"chat/rooms/" + c.group},
	})
	if res.Status != http.StatusNoContent {
		t.Fatalf("forwarded subscribe: %d %s", res.Status, res)
	}
	id := c.post(t, c.alice, c.group, "forwarded")
	bob.Expect(t, "chat/rooms/"+c.group, byID(id), wait)

	if res := c.env.DoAt(c.nodes[1].url, c.bob, http.MethodPost, "/api/realtime", map[string]any{"clientId": "nobody", "subscriptions": []string{}}); res.Status != http.StatusNotFound {
		t.Fatalf("unknown client: want 404, got %d", res.Status)
	}
}

func TestClusterRemovalEndsDeliveryOnEveryNode(t *testing.T) {
	c := newCluster(t)
	c.addMember(t, c.carol, c.carolsRoom, c.bob) // bob's sentinel room
	topic := "chat/rooms/" + c.group
	var conns []*chattest.SSE
	for _, node := range c.nodes {
		conn := c.env.ConnectAt(node.url, c.bob)
		conn.Subscribe(topic, "chat_messages/*")
		conns = append(conns, conn)
	}
	membership := c.env.Do(c.alice, http.MethodGet, "/api/collections/chat_room_users/records?filter="+urlFilter("user='%s' && room='%s'", c.bob.ID(), c.group), nil).Items()[0]["id"].(string)

	removedAt := time.Now()
	if res := c.env.Do(c.alice, http.MethodDelete, "/api/collections/chat_room_users/records/"+membership, nil); res.Status != http.StatusNoContent {
		t.Fatalf("remove: %d", res.Status)
	}
	for _, conn := range conns {
		conn.Expect(t, topic, func(ev chattest.Event) bool { return ev.Type() == "member.left" }, time.Second)
	}
	if elapsed := time.Since(removedAt); elapsed > time.Second {
		t.Fatalf("member.left reached every node after %s", elapsed)
	}
	c.post(t, c.alice, c.group, "after removal")
	sentinel := c.post(t, c.carol, c.carolsRoom, "sentinel")
	for _, conn := range conns {
		for {
			ev, ok := conn.Next(wait)
			if !ok {
				t.Fatal("no sentinel")
			}
			if ev.Name == "chat_messages/*" && ev.RecordID() == sentinel {
				break
			}
			if ev.Name == topic || (ev.Name == "chat_messages/*" && ev.Record()["room"] == c.group) {
				t.Fatalf("removed member still got %s %v", ev.Name, ev.Data)
			}
		}
	}
}

func TestClusterNodeRestartClientsReconnect(t *testing.T) {
	c := newCluster(t)
	node := c.nodes[0]
	topic := "chat/rooms/" + c.group
	bob := c.env.ConnectAt(node.url, c.bob)
	bob.Subscribe(topic)

	node.stop()
	select {
	case <-bob.Closed():
	case <-time.After(wait):
		t.Fatal("the stream did not end with its node")
	}
	restarted := c.startNode(t, node.addr)

	// As the SDKs do: connect again and send the subscriptions again.
	again := c.env.ConnectAt(restarted.url, c.bob)
	if res := again.Subscribe(topic); res.Status != http.StatusNoContent {
		t.Fatalf("resubscribe: %d %s", res.Status, res)
	}
	id := c.post(t, c.alice, c.group, "after restart")
	again.Expect(t, topic, byID(id), wait)
}

// TestClusterSurvivesNATSRestart: writes go on while NATS is away; a node's
// health says so; when NATS is back the node closes its connections (what
// was published meanwhile never reached it) and the clients, reconnecting
// as the SDKs do, get what comes next. (What they missed, they sync.)
func TestClusterSurvivesNATSRestart(t *testing.T) {
	c := newCluster(t)
	topic := "chat/rooms/" + c.group
	bob := c.env.ConnectAt(c.nodes[1].url, c.bob)
	bob.Subscribe(topic)
	onWriter := c.env.ConnectAt(c.env.Server.URL, c.bob)
	onWriter.Subscribe(topic)
	first := c.post(t, c.alice, c.group, "before the outage")
	bob.Expect(t, topic, byID(first), wait)
	onWriter.Expect(t, topic, byID(first), wait)

	c.nats.Shutdown()
	c.nats.WaitForShutdown()
	for _, node := range c.nodes {
		health := waitForHealth(t, node, http.StatusServiceUnavailable)
		if health["nats"] == "connected" {
			t.Fatalf("node %s with NATS down reports %v", node.addr, health)
		}
	}
	var during []string
	for i := 0; i < 5; i++ { // writes go on while the bus is away
		during = append(during, c.post(t, c.alice, c.group, fmt.Sprintf("during the outage %d", i)))
	}
	// The writer's own clients lose nothing.
	for _, id := range during {
		onWriter.Expect(t, topic, byID(id), wait)
	}

	c.nats = startNATS(t, c.natsPort)
	t.Cleanup(c.nats.Shutdown)
	for _, node := range c.nodes {
		if health := waitForHealth(t, node, http.StatusOK); health["nats"] != "connected" {
			t.Fatalf("node %s with NATS back reports %v", node.addr, health)
		}
	}
	select {
	case <-bob.Closed():
	case <-time.After(wait):
		t.Fatal("the node kept a connection that may have missed events")
	}
	// Bob reconnects as the SDKs do. The node's own reconnect handling (it
	// closes every connection once NATS is back) may still be under way and
	// close this one too: then he reconnects once more.
	for attempt := 1; ; attempt++ {
		again := c.env.ConnectAt(c.nodes[1].url, c.bob)
		if res := again.Subscribe(topic); res.Status != http.StatusNoContent {
			t.Fatalf("resubscribe: %d %s", res.Status, res)
		}
		id := c.post(t, c.alice, c.group, fmt.Sprintf("after the outage %d", attempt))
		if receivedUnlessClosed(again, topic, id) {
			return
		}
		if attempt == 3 {
			t.Fatal("no delivery after NATS came back, over three connections")
		}
	}
}

// receivedUnlessClosed waits for the event of record id on sse; false when
// the connection closes first (or nothing comes within wait).
func receivedUnlessClosed(sse *chattest.SSE, name, id string) bool {
	deadline := time.After(wait)
	for {
		select {
		case ev := <-sse.Events:
			if ev.Name == name && ev.RecordID() == id {
				return true
			}
		case <-sse.Closed():
			return false
		case <-deadline:
			return false
		}
	}
}

// waitForHealth polls a node's /api/health until it answers status and
// returns its data.
func waitForHealth(t *testing.T, node *testNode, status int) map[string]any {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		res, err := http.Get(node.url + "/api/health")
		if err == nil {
			var body struct {
				Data map[string]any `json:"data"`
			}
			_ = json.NewDecoder(res.Body).Decode(&body)
			res.Body.Close()
			if res.StatusCode == status {
				return body.Data
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s: /api/health never answered %d (%v)", node.addr, status, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
