package realtime

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pbchat/pbchat/internal/chat"
)

// fakeNodeBroker is a node's broker without NATS: events published on it
// are delivered at once; its connection state is set by the test.
type fakeNodeBroker struct {
	LocalBroker
	mu        sync.Mutex
	connected bool
}

func (b *fakeNodeBroker) Ask([]byte, time.Duration) ([]byte, error) {
	return nil, errors.New("no other node")
}

func (b *fakeNodeBroker) Answer(func([]byte) ([]byte, bool)) (func(), error) { return func() {}, nil }

func (b *fakeNodeBroker) State() (bool, string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.connected {
		return true, "connected"
	}
	return false, "reconnecting"
}

func (b *fakeNodeBroker) setConnected(connected bool) {
	b.mu.Lock()
	b.connected = connected
	b.mu.Unlock()
}

// nodeWorld is a node in front of a fake writer that authorises bob's
// topic of room r1.
type nodeWorld struct {
	broker *fakeNodeBroker
	node   *Node
	server *httptest.Server
}

func newNodeWorld(t *testing.T, config NodeConfig) *nodeWorld {
	t.Helper()
	writer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != AuthorizePath || r.Header.Get("Authorization") != "bob's token" {
			writeError(w, http.StatusForbidden, "no")
			return
		}
		writeJSON(w, http.StatusOK, Plan{User: "bob", Topics: map[string][]string{"r1": {"chat/rooms/r1"}}})
	}))
	t.Cleanup(writer.Close)
	broker := &fakeNodeBroker{connected: true}
	config.Writer, config.Broker, config.Logger = writer.URL, broker, quietLogger
	node, err := NewNode(config)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(node.Close)
	server := httptest.NewServer(node.Handler())
	t.Cleanup(server.Close)
	return &nodeWorld{broker: broker, node: node, server: server}
}

// stream is an SSE connection to the node.
type stream struct {
	clientID string
	events   chan map[string]any
	ended    chan struct{}
}

func (w *nodeWorld) connect(t *testing.T) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, w.server.URL+"/api/realtime", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	s := &stream{events: make(chan map[string]any, 16), ended: make(chan struct{})}
	connected := make(chan string, 1)
	go func() {
		defer close(s.ended)
		defer res.Body.Close()
		scanner := bufio.NewScanner(res.Body)
		var name string
		for scanner.Scan() {
			line := scanner.Text()
			if v, ok := strings.CutPrefix(line, "event:"); ok {
				name = v
			} else if v, ok := strings.CutPrefix(line, "data:"); ok {
				var data map[string]any
				_ = json.Unmarshal([]byte(v), &data)
				if name == "PB_CONNECT" {
					connected <- data["clientId"].(string)
				} else {
					s.events <- data
				}
			}
		}
	}()
	select {
	case s.clientID = <-connected:
	case <-time.After(5 * time.Second):
		t.Fatal("no PB_CONNECT")
	}
	return s
}

func (w *nodeWorld) subscribe(t *testing.T, s *stream, subs ...string) int {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"clientId": s.clientID, "subscriptions": subs})
	req, _ := http.NewRequest(http.MethodPost, w.server.URL+"/api/realtime", bytes.NewReader(body))
	req.Header.Set("Authorization", "bob's token")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

func TestNodeHealthReportsNATS(t *testing.T) {
	w := newNodeWorld(t, NodeConfig{})
	tests := []struct {
		connected bool
		status    int
		state     string
	}{
		{true, http.StatusOK, "connected"},
		{false, http.StatusServiceUnavailable, "reconnecting"},
		{true, http.StatusOK, "connected"},
	}
	for _, tt := range tests {
		w.broker.setConnected(tt.connected)
		res, err := http.Get(w.server.URL + "/api/health")
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Code int               `json:"code"`
			Data map[string]string `json:"data"`
		}
		_ = json.NewDecoder(res.Body).Decode(&body)
		res.Body.Close()
		if res.StatusCode != tt.status || body.Code != tt.status || body.Data["nats"] != tt.state {
			t.Fatalf("connected=%v: %d %+v, want %d with nats=%s", tt.connected, res.StatusCode, body, tt.status, tt.state)
		}
	}
}

func TestNodeEndsConnectionsAtMaxLifetime(t *testing.T) {
	w := newNodeWorld(t, NodeConfig{MaxLifetime: 300 * time.Millisecond})
	s := w.connect(t)
	if status := w.subscribe(t, s, "chat/rooms/r1"); status != http.StatusNoContent {
		t.Fatalf("subscribe: %d", status)
	}
	// Events keep it from being idle; its age ends it all the same.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
				_ = w.broker.Publish(msgEvent("r1", "x"))
			}
		}
	}()
	select {
	case <-s.ended:
	case <-time.After(10 * time.Second):
		t.Fatal("a connection outlived the node's MaxLifetime")
	}
}

// TestNodeDeliversAndRevokes: events reach a node's subscriber with their
// cursor; a revocation of the user ends the connection.
func TestNodeDeliversAndRevokes(t *testing.T) {
	w := newNodeWorld(t, NodeConfig{})
	s := w.connect(t)
	if status := w.subscribe(t, s, "chat/rooms/r1"); status != http.StatusNoContent {
		t.Fatalf("subscribe: %d", status)
	}
	_ = w.broker.Publish(msgEvent("r1", "x1"))
	select {
	case ev := <-s.events:
		if ev["type"] != chat.EventMessageCreated || ev["cursor"] != "c-x1" {
			t.Fatalf("event %v", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
	}

	_ = w.broker.Publish(revocation("bob"))
	_ = w.broker.Publish(msgEvent("r1", "x2"))
	select {
	case ev := <-s.events:
		t.Fatalf("after the revocation: %v", ev)
	case <-s.ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the revoked user's connection stays open")
	}
	// Its id is gone with it.
	if status := w.subscribe(t, s, "chat/rooms/r1"); status != http.StatusNotFound {
		t.Fatalf("subscribe on the ended connection: %d", status)
	}
}
