package chattest

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Event is one server-sent event as the JS SDK receives it.
type Event struct {
	Name string
	Data map[string]any
}

// Type is a room topic event's "type".
func (e Event) Type() string { s, _ := e.Data["type"].(string); return s }

// Action is a stock event's "action".
func (e Event) Action() string { s, _ := e.Data["action"].(string); return s }

// RecordID is the id of the event's record.
func (e Event) RecordID() string {
	record, _ := e.Data["record"].(map[string]any)
	id, _ := record["id"].(string)
	return id
}

// Record returns the event's record.
func (e Event) Record() map[string]any {
	record, _ := e.Data["record"].(map[string]any)
	return record
}

// SSE is a realtime connection speaking PocketBase's protocol, as the SDKs do:
// GET /api/realtime, read PB_CONNECT's clientId, POST the subscriptions.
type SSE struct {
	ClientID string
	Events   chan Event
	env      *Env
	user     *User
	cancel   context.CancelFunc
	base     string
	closed   chan struct{} // closed when the server ends the stream
}

// Closed is closed when the stream ends (the server went away).
func (s *SSE) Closed() <-chan struct{} { return s.closed }

// Connect opens a realtime connection as user (nil: guest).
func (e *Env) Connect(user *User) *SSE {
	e.t.Helper()
	return e.ConnectAt(e.Server.URL, user)
}

// ConnectAt opens a realtime connection to another server speaking
// PocketBase's realtime protocol (a realtime node), as user.
func (e *Env) ConnectAt(baseURL string, user *User) *SSE {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/api/realtime", nil)
	if err != nil {
		e.t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		e.t.Fatalf("realtime connect: %v", err)
	}
	s := &SSE{Events: make(chan Event, 1024), env: e, user: user, cancel: cancel, base: baseURL, closed: make(chan struct{})}
	connected := make(chan string, 1)
	go func() {
		defer close(s.closed)
		defer res.Body.Close()
		scanner := bufio.NewScanner(res.Body)
		scanner.Buffer(make([]byte, 1<<20), 1<<20)
		var name, data string
		for scanner.Scan() {
			line := scanner.Text()
			switch {
			case strings.HasPrefix(line, "event:"):
				name = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
			case strings.HasPrefix(line, "data:"):
				data = strings.TrimSpace(strings.TrimPrefix(line, "data:"))
			case line == "":
				if name == "" {
					continue
				}
				var payload map[string]any
				_ = json.Unmarshal([]byte(data), &payload)
				if name == "PB_CONNECT" {
					id, _ := payload["clientId"].(string)
					connected <- id
				} else {
					s.Events <- Event{Name: name, Data: payload}
				}
				name, data = "", ""
			}
		}
	}()
	select {
	case s.ClientID = <-connected:
	case <-time.After(5 * time.Second):
		cancel()
		e.t.Fatal("no PB_CONNECT within 5s")
	}
	e.t.Cleanup(s.Close)
	return s
}

// Subscribe replaces the connection's subscriptions and returns the HTTP status.
func (s *SSE) Subscribe(subscriptions ...string) *Response {
	s.env.t.Helper()
	if subscriptions == nil {
		subscriptions = []string{}
	}
	return s.env.DoAt(s.base, s.user, http.MethodPost, "/api/realtime", map[string]any{
		"clientId": s.ClientID, "subscriptions": subscriptions,
	})
}

// Close ends the connection.
func (s *SSE) Close() { s.cancel() }

// Next waits for the next event, up to timeout.
func (s *SSE) Next(timeout time.Duration) (Event, bool) {
	select {
	case ev := <-s.Events:
		return ev, true
	case <-time.After(timeout):
		return Event{}, false
	}
}

// Expect waits for an event named name for which match returns true,
// skipping others, and fails the test after timeout.
func (s *SSE) Expect(t testing.TB, name string, match func(Event) bool, timeout time.Duration) Event {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev := <-s.Events:
			if ev.Name == name && (match == nil || match(ev)) {
				return ev
			}
		case <-deadline:
			t.Fatalf("no %q event within %s", name, timeout)
			return Event{}
		}
	}
}

// Quiet asserts that no event arrives within d (after whatever is in flight
// has had time to land).
func (s *SSE) Quiet(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case ev := <-s.Events:
		t.Fatalf("unexpected event %s: %v", ev.Name, ev.Data)
	case <-time.After(d):
	}
}
