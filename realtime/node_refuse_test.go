package realtime

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// newNodeWorldWithPlan is a node in front of a writer that answers every
// authorisation with plan.
func newNodeWorldWithPlan(t *testing.T, plan Plan) *nodeWorld {
	t.Helper()
	writer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, plan)
	}))
	t.Cleanup(writer.Close)
	broker := &fakeNodeBroker{connected: true}
	node, err := NewNode(NodeConfig{Writer: writer.URL, Broker: broker, Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(node.Close)
	server := httptest.NewServer(node.Handler())
	t.Cleanup(server.Close)
	return &nodeWorld{broker: broker, node: node, server: server}
}

// What the writer leaves to PocketBase (Plan.Rest: other collections, a
// superuser's subscriptions) a node never serves: it refuses the request
// with a 400 naming subscriptions instead of a 204, and installs nothing.
func TestNodeRefusesWhatOnlyTheWriterServes(t *testing.T) {
	w := newNodeWorldWithPlan(t, Plan{
		User:   "bob",
		Topics: map[string][]string{"r1": {"chat/rooms/r1"}},
		Rest:   []string{"users/*"},
	})
	s := w.connect(t)
	body, _ := json.Marshal(map[string]any{"clientId": s.clientID, "subscriptions": []string{"chat/rooms/r1", "users/*"}})
	res, err := http.Post(w.server.URL+"/api/realtime", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(string(raw), "writer's /api/realtime") {
		t.Fatalf("want 400 naming the writer's /api/realtime, got %d %s", res.StatusCode, raw)
	}
	var answer struct {
		Data map[string]struct {
			Code, Message string
		} `json:"data"`
	}
	if err := json.Unmarshal(raw, &answer); err != nil || answer.Data["subscriptions"].Code == "" {
		t.Fatalf("the 400 should name subscriptions: %s", raw)
	}
	// Nothing of it was installed: the room's event does not arrive.
	_ = w.broker.Publish(msgEvent("r1", "x1"))
	select {
	case ev := <-s.events:
		t.Fatalf("event after a refused subscribe: %v", ev)
	case <-time.After(300 * time.Millisecond):
	}
}

// PB_CONNECT, which the SDKs send as a subscription when an app listens for
// (re)connects, is the node's to serve: it sends it on every connection.
func TestNodeServesPBConnect(t *testing.T) {
	w := newNodeWorldWithPlan(t, Plan{
		User:   "bob",
		Topics: map[string][]string{"r1": {"chat/rooms/r1"}},
		Rest:   []string{"PB_CONNECT"},
	})
	s := w.connect(t)
	if status := w.subscribe(t, s, "PB_CONNECT", "chat/rooms/r1"); status != http.StatusNoContent {
		t.Fatalf("subscribe PB_CONNECT and a room topic: %d, want 204", status)
	}
	_ = w.broker.Publish(msgEvent("r1", "x1"))
	select {
	case <-s.events:
	case <-time.After(5 * time.Second):
		t.Fatal("no event of the room")
	}
}
