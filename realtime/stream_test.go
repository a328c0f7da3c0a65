package realtime

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tests"
)

// streamWorld is an app with pbchat's collections and hub behind a real
// HTTP/1.1 server, and a non-chat collection "notes" anyone may list.
type streamWorld struct {
	app    *tests.TestApp
	hub    *Hub
	server *httptest.Server
	notes  *core.Collection
}

// newStreamWorld builds the world; connect, when set, is a host's connect
// handler (it runs before pbchat's stream takes the connection over).
func newStreamWorld(t *testing.T, tick time.Duration, connect func(e *core.RealtimeConnectRequestEvent) error) *streamWorld {
	t.Helper()
	app, settings := newChatApp(t)
	notes := core.NewBaseCollection("notes")
	notes.ListRule, notes.ViewRule = new(string), new(string)
	notes.Fields.Add(&core.TextField{Name: "text"})
	if err := app.Save(notes); err != nil {
		t.Fatal(err)
	}
	hub := NewHub(NewLocalBroker(), quietLogger)
	hub.streams.tick = tick
	hub.Bind(app, settings)
	if connect != nil {
		app.OnRealtimeConnectRequest().BindFunc(connect)
	}
	router, err := apis.NewRouter(app)
	if err != nil {
		t.Fatal(err)
	}
	var handler http.Handler
	if err := app.OnServe().Trigger(&core.ServeEvent{App: app, Router: router}, func(e *core.ServeEvent) error {
		handler, err = e.Router.BuildMux()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	server := httptest.NewServer(handler)
	t.Cleanup(server.Close)
	return &streamWorld{app: app, hub: hub, server: server, notes: notes}
}

// sseReader is a realtime connection read line by line, as an SDK does.
type sseReader struct {
	res      *http.Response
	clientID string
	events   chan sseEvent
	comments chan string
	ended    chan struct{}
	cancel   context.CancelFunc
}

type sseEvent struct {
	name string
	data map[string]any
}

func (w *streamWorld) connect(t *testing.T) *sseReader {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, w.server.URL+"/api/realtime", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r := &sseReader{res: res, events: make(chan sseEvent, 64), comments: make(chan string, 64), ended: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(r.ended)
		defer res.Body.Close()
		scanner := bufio.NewScanner(res.Body)
		var name, data string
		for scanner.Scan() {
			line := scanner.Text()
			switch {
			case strings.HasPrefix(line, ":"):
				select {
				case r.comments <- line:
				default:
				}
			case strings.HasPrefix(line, "event:"):
				name = strings.TrimPrefix(line, "event:")
			case strings.HasPrefix(line, "data:"):
				data = strings.TrimPrefix(line, "data:")
			case line == "" && name != "":
				var payload map[string]any
				_ = json.Unmarshal([]byte(data), &payload)
				r.events <- sseEvent{name: name, data: payload}
				name, data = "", ""
			}
		}
	}()
	select {
	case ev := <-r.events:
		if ev.name != "PB_CONNECT" {
			t.Fatalf("first event %q, want PB_CONNECT", ev.name)
		}
		r.clientID, _ = ev.data["clientId"].(string)
	case <-time.After(5 * time.Second):
		t.Fatal("no PB_CONNECT")
	}
	return r
}

// subscribe posts the connection's subscriptions as a guest; the status.
func (w *streamWorld) subscribe(t *testing.T, r *sseReader, subs ...string) int {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"clientId": r.clientID, "subscriptions": subs})
	res, err := http.Post(w.server.URL+"/api/realtime", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

func (w *streamWorld) note(t *testing.T, text string) {
	t.Helper()
	record := core.NewRecord(w.notes)
	record.Set("text", text)
	if err := w.app.Save(record); err != nil {
		t.Fatal(err)
	}
}

// waitEnded waits for the server to end the stream; the client id is then
// unknown to PocketBase.
func (w *streamWorld) waitEnded(t *testing.T, r *sseReader, within time.Duration, why string) {
	t.Helper()
	select {
	case <-r.ended:
	case <-time.After(within):
		t.Fatalf("the connection stays open: %s", why)
	}
	if status := w.subscribe(t, r, "notes/*"); status != http.StatusNotFound {
		t.Fatalf("subscribe after the end: %d, want 404", status)
	}
}

func eventually(t *testing.T, within time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestStreamTakesTheConnectionOver(t *testing.T) {
	w := newStreamWorld(t, time.Second, nil)
	r := w.connect(t)
	if r.res.StatusCode != http.StatusOK || r.res.Header.Get("Content-Type") != "text/event-stream" ||
		r.res.Header.Get("Cache-Control") != "no-store" || r.res.TransferEncoding[0] != "chunked" {
		t.Fatalf("response: %d %v %v", r.res.StatusCode, r.res.Header, r.res.TransferEncoding)
	}
	if n := w.hub.streams.count(); n != 1 {
		t.Fatalf("%d streams, want 1", n)
	}
	if _, err := w.app.SubscriptionsBroker().ClientById(r.clientID); err != nil {
		t.Fatalf("the client is not registered: %v", err)
	}
}

func TestStreamDeliversStockSubscriptions(t *testing.T) {
	w := newStreamWorld(t, time.Second, nil)
	r := w.connect(t)
	if status := w.subscribe(t, r, "notes/*"); status != http.StatusNoContent {
		t.Fatalf("subscribe: %d", status)
	}
	for _, text := range []string{"one", "two", "three"} {
		w.note(t, text)
		select {
		case ev := <-r.events:
			record, _ := ev.data["record"].(map[string]any)
			if ev.name != "notes/*" || ev.data["action"] != "create" || record["text"] != text {
				t.Fatalf("event %s %v, want the creation of %q", ev.name, ev.data, text)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no event for %q", text)
		}
	}
}

func TestStreamEnds(t *testing.T) {
	tests := []struct {
		name     string
		idle     time.Duration
		lifetime time.Duration
		act      func(t *testing.T, w *streamWorld, r *sseReader, stop <-chan struct{})
	}{
		{"idle timeout, no event", 300 * time.Millisecond, time.Hour, nil},
		{"max lifetime, events keep coming", time.Hour, 400 * time.Millisecond, func(t *testing.T, w *streamWorld, _ *sseReader, stop <-chan struct{}) {
			for {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
					record := core.NewRecord(w.notes)
					record.Set("text", "tick")
					_ = w.app.Save(record)
				}
			}
		}},
		{"discarded (a slow client, a revoked token)", time.Hour, time.Hour, func(t *testing.T, w *streamWorld, r *sseReader, _ <-chan struct{}) {
			client, err := w.app.SubscriptionsBroker().ClientById(r.clientID)
			if err != nil {
				t.Error(err)
				return
			}
			client.Discard()
		}},
		{"the hub loses events", time.Hour, time.Hour, func(t *testing.T, w *streamWorld, r *sseReader, _ <-chan struct{}) {
			w.hub.set(mustClient(t, w, r), "bob", map[string][]string{"r1": {"chat/rooms/r1"}}, nil, nil)
			w.hub.Lost("")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newStreamWorld(t, time.Second, func(e *core.RealtimeConnectRequestEvent) error {
				e.IdleTimeout, e.MaxTimeout = tt.idle, tt.lifetime
				return e.Next()
			})
			r := w.connect(t)
			if status := w.subscribe(t, r, "notes/*"); status != http.StatusNoContent {
				t.Fatalf("subscribe: %d", status)
			}
			stop := make(chan struct{})
			defer close(stop)
			if tt.act != nil {
				go tt.act(t, w, r, stop)
			}
			w.waitEnded(t, r, 10*time.Second, tt.name)
			eventually(t, 5*time.Second, "the stream is forgotten", func() bool { return w.hub.streams.count() == 0 })
		})
	}
}

func mustClient(t *testing.T, w *streamWorld, r *sseReader) *quietClient {
	t.Helper()
	client, err := w.app.SubscriptionsBroker().ClientById(r.clientID)
	if err != nil {
		t.Fatal(err)
	}
	return client.(*quietClient)
}

func TestStreamFindsClosedPeers(t *testing.T) {
	w := newStreamWorld(t, 20*time.Millisecond, nil)
	r := w.connect(t)
	w.hub.set(mustClient(t, w, r), "bob", map[string][]string{"r1": {"chat/rooms/r1"}}, nil, nil)
	r.cancel() // the peer goes away without a word to the server
	eventually(t, 5*time.Second, "the closed peer is unregistered", func() bool {
		_, err := w.app.SubscriptionsBroker().ClientById(r.clientID)
		return err != nil && w.hub.streams.count() == 0
	})
	w.hub.mu.RLock()
	defer w.hub.mu.RUnlock()
	if len(w.hub.clients) != 0 || len(w.hub.byRoom["r1"]) != 0 {
		t.Fatalf("the hub still follows the gone client: %v", w.hub.clients)
	}
}

func TestStreamSendsKeepAlives(t *testing.T) {
	w := newStreamWorld(t, 20*time.Millisecond, nil)
	w.hub.streams.keepAlive = 50 * time.Millisecond
	r := w.connect(t)
	select {
	case c := <-r.comments:
		if c != ":" {
			t.Fatalf("keep-alive %q, want an SSE comment", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no keep-alive on a quiet stream")
	}
	select {
	case ev := <-r.events:
		t.Fatalf("a keep-alive made an event: %v", ev)
	case <-time.After(200 * time.Millisecond):
	}
}

func TestCanStream(t *testing.T) {
	tests := []struct {
		name     string
		major    int
		minor    int
		hijacker bool
		want     bool
	}{
		{"HTTP/1.1", 1, 1, true, true},
		{"HTTP/1.0: no chunked framing", 1, 0, true, false},
		{"HTTP/2", 2, 0, true, false},
		{"a writer that cannot hand its connection over", 1, 1, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/api/realtime", nil)
			r.ProtoMajor, r.ProtoMinor = tt.major, tt.minor
			var w http.ResponseWriter = plainWriter{httptest.NewRecorder()}
			if tt.hijacker {
				w = hijackableWriter{w}
			}
			if got := canStream(w, r); got != tt.want {
				t.Fatalf("canStream = %v, want %v", got, tt.want)
			}
		})
	}
}

type plainWriter struct{ http.ResponseWriter }

type hijackableWriter struct{ http.ResponseWriter }

func (hijackableWriter) Hijack() (c net.Conn, rw *bufio.ReadWriter, err error) { return nil, nil, nil }
