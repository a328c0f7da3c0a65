package realtime

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/subscriptions"
)

// An idle SSE connection served the stock way (apis/realtime.go) holds
// net/http's connection goroutine, parked in the handler's select loop at
// the bottom of the router's middleware chain with the stack that chain
// grew, net/http's background-read goroutine, and net/http's buffered
// reader and writers: about 45 KiB. A stream instead takes the connection
// over from net/http once the response has started (Hijack) and the handler
// returns: what remains per idle client is the socket and a few small
// structs. An event is written by the goroutine that sends it (the hub's
// pump, PocketBase's broadcaster), with what other senders queued meanwhile
// in the same write. One goroutine per process (streamSet.run) finds
// closed peers, sends keep-alives and enforces the idle timeout and the
// maximum lifetime, which the stock handler does with two timers and a
// goroutine per client.
//
// The response is HTTP/1.1 chunked, as net/http frames the stock one, with
// "Connection: close": the connection carries nothing after the stream.
// HTTP/2 (and HTTP/1.0) requests keep the stock handler.

const (
	// streamTick is how often the shared goroutine checks every stream.
	streamTick = 5 * time.Second
	// keepAliveEvery: a stream with no write for this long gets an SSE
	// comment line, so that a peer gone without a word (and a proxy's idle
	// timer) is found by a failed write.
	keepAliveEvery = 30 * time.Second
	// writeTimeout: a peer that takes no bytes for this long is disconnected
	// (it reconnects and resynchronises).
	writeTimeout = 30 * time.Second
	// maxPending bounds what senders may queue behind a write in progress.
	maxPending = 4 << 20
)

// keepAlive is an SSE comment: every SSE parser ignores it, and it ends no
// event, so no parser sees an empty one.
var keepAlive = []byte("2\r\n:\n\r\n")

// chunkEnd ends a chunked response.
var chunkEnd = []byte("0\r\n\r\n")

// sseStream is one SSE response on a connection taken over from net/http.
type sseStream struct {
	set     *streamSet
	conn    net.Conn
	id      string // the client's id, each event's SSE id as in the stock handler
	onClose func() // unregisters the client (broker, hub)
	idle    time.Duration
	// sending, when set, passes every message through the app's
	// OnRealtimeMessageSend handlers: nil when nothing is to be written.
	sending func(*subscriptions.Message) (*subscriptions.Message, error)

	// Runtime timers, no goroutine: the maximum lifetime, and the idle
	// timeout (re-armed lazily, not on every event).
	lifetime, idleTimer *time.Timer

	closed atomic.Bool

	mu           sync.Mutex
	writing      bool   // a sender is writing; others queue in pending
	pending      []byte // frames queued while a sender writes
	lastEvent    time.Time
	lastWrite    time.Time
	writingSince time.Time
}

// streamSet holds a hub's streams and runs the one goroutine that watches
// them, only while there are some.
type streamSet struct {
	tick      time.Duration
	keepAlive time.Duration

	mu      sync.Mutex
	streams map[*sseStream]struct{}
	running bool

	// frames are buffers events are framed in, for the time of a write.
	frames sync.Pool
}

func (s *streamSet) frame() *[]byte {
	if b, ok := s.frames.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, 1024)
	return &b
}

func newStreamSet() *streamSet {
	return &streamSet{tick: streamTick, keepAlive: keepAliveEvery, streams: map[*sseStream]struct{}{}}
}

// errNotHijackable: the request is served the stock way.
var errNotHijackable = errors.New("the connection cannot be taken over")

// canStream reports whether r's connection can carry a stream: HTTP/1.1
// (chunked framing) on a writer that can hand its connection over.
func canStream(w http.ResponseWriter, r *http.Request) bool {
	if r.ProtoMajor != 1 || r.ProtoMinor < 1 {
		return false
	}
	for {
		if _, ok := w.(http.Hijacker); ok {
			return true
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return false
		}
		w = u.Unwrap()
	}
}

// start takes r's connection over, registers the client (register runs
// before the first byte, as the stock handler registers before PB_CONNECT),
// writes the response head and PB_CONNECT, and leaves the stream to the
// set. onClose runs once, when the stream ends for whatever reason.
// errNotHijackable means nothing was done; any other error means the
// stream has already ended.
func (s *streamSet) start(w http.ResponseWriter, r *http.Request, c *quietClient, idle, lifetime time.Duration,
	sending func(*subscriptions.Message) (*subscriptions.Message, error), register, onClose func()) error {
	if !canStream(w, r) {
		return errNotHijackable
	}
	head := responseHead(w.Header())
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		if errors.Is(err, http.ErrNotSupported) {
			return errNotHijackable
		}
		return fmt.Errorf("pbchat realtime: take the connection over: %w", err)
	}
	// net/http's read and write deadlines (ReadTimeout, WriteTimeout) do not
	// apply to a stream; every write sets its own.
	_ = conn.SetDeadline(time.Time{})
	// The request had no body: nothing buffered by net/http is owed to anyone.
	_ = rw

	now := time.Now()
	st := &sseStream{
		set:       s,
		conn:      conn,
		id:        c.Id(),
		onClose:   onClose,
		idle:      idle,
		sending:   sending,
		lastEvent: now,
		lastWrite: now,
		// The head and PB_CONNECT are being written.
		writing:      true,
		writingSince: now,
	}
	st.lifetime = time.AfterFunc(lifetime, st.close)
	st.idleTimer = time.AfterFunc(idle, st.idleCheck)
	c.setStream(st)
	register()
	s.add(st)

	connect := &subscriptions.Message{Name: "PB_CONNECT", Data: []byte(`{"clientId":"` + st.id + `"}`)}
	if sending != nil {
		if connect, err = sending(connect); err != nil {
			st.close()
			return fmt.Errorf("pbchat realtime: PB_CONNECT: %w", err)
		}
	}
	if connect != nil {
		head = appendFrame(head, st.id, *connect)
	}
	if err := st.write(head); err != nil {
		st.close()
		return fmt.Errorf("pbchat realtime: PB_CONNECT: %w", err)
	}
	return nil
}

// responseHead is the status line and headers of the stream's response:
// those the handler and the middlewares set (content type, CORS…), chunked.
func responseHead(h http.Header) []byte {
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 200 OK\r\n")
	h = h.Clone()
	h.Del("Content-Length")
	h.Set("Transfer-Encoding", "chunked")
	h.Set("Connection", "close")
	if h.Get("Date") == "" {
		h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	}
	_ = h.Write(&b) // a bytes.Buffer takes every write
	b.WriteString("\r\n")
	return b.Bytes()
}

// appendFrame appends msg as the stock handler writes it (WriteSSE), in one
// HTTP chunk.
func appendFrame(b []byte, id string, msg subscriptions.Message) []byte {
	size := len("id:\nevent:\ndata:\n\n") + len(id) + len(msg.Name) + len(msg.Data)
	b = slices.Grow(b, size+len("ffffffff\r\n\r\n"))
	b = strconv.AppendInt(b, int64(size), 16)
	b = append(b, "\r\n"...)
	b = append(b, "id:"...)
	b = append(b, id...)
	b = append(b, "\nevent:"...)
	b = append(b, msg.Name...)
	b = append(b, "\ndata:"...)
	b = append(b, msg.Data...)
	b = append(b, "\n\n\r\n"...)
	return b
}

// send writes msg, with whatever other senders queue meanwhile, or queues
// it behind a write in progress. It blocks while it writes, as the stock
// client's Send blocks until the handler has written.
func (st *sseStream) send(msg subscriptions.Message) {
	if st.closed.Load() {
		return
	}
	if st.sending != nil {
		out, err := st.sending(&msg)
		if err != nil {
			st.close() // as the stock handler: a handler's error ends the connection
			return
		}
		if out == nil {
			return
		}
		msg = *out
	}
	st.mu.Lock()
	st.lastEvent = time.Now()
	if st.writing {
		if len(st.pending) > maxPending {
			st.mu.Unlock()
			st.close() // too slow: it reconnects and resynchronises
			return
		}
		st.pending = appendFrame(st.pending, st.id, msg)
		st.mu.Unlock()
		return
	}
	st.writing, st.writingSince = true, st.lastEvent
	st.mu.Unlock()
	frame := st.set.frame()
	*frame = appendFrame((*frame)[:0], st.id, msg)
	err := st.write(*frame)
	st.set.frames.Put(frame)
	if err != nil {
		st.close()
	}
}

// write writes b, then what was queued meanwhile, until nothing is; the
// caller has set st.writing (start: nobody else knows the stream yet). A
// write that takes more than writeTimeout is ended by the shared goroutine
// (check): no deadline is set per write.
func (st *sseStream) write(b []byte) error {
	for {
		_, err := st.conn.Write(b)
		st.mu.Lock()
		if err != nil || len(st.pending) == 0 {
			st.writing = false
			st.pending = nil
			st.lastWrite = time.Now()
			st.mu.Unlock()
			return err
		}
		b, st.pending = st.pending, nil
		st.writingSince = time.Now()
		st.mu.Unlock()
	}
}

// close ends the stream once: the client is unregistered, then the
// response ended and the connection closed, so that a peer that sees the
// end finds its client id gone. Not under the hub's lock (onClose takes it).
func (st *sseStream) close() {
	if !st.closed.CompareAndSwap(false, true) {
		return
	}
	st.set.remove(st)
	st.lifetime.Stop()
	st.idleTimer.Stop()
	st.onClose()
	st.mu.Lock()
	idle := !st.writing
	st.writing = true // no sender writes any more
	st.mu.Unlock()
	if idle {
		_ = st.conn.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = st.conn.Write(chunkEnd)
	}
	_ = st.conn.Close()
}

// idleCheck runs when the idle timeout may have passed: it ends a stream
// with no event for that long, or looks again when it could have.
func (st *sseStream) idleCheck() {
	if st.closed.Load() {
		return
	}
	st.mu.Lock()
	left := st.idle - time.Since(st.lastEvent)
	st.mu.Unlock()
	if left <= 0 {
		st.close()
		return
	}
	st.idleTimer.Reset(left)
}

// check is the shared goroutine's look at one stream: a peer that closed
// its end ends it; a quiet one gets a keep-alive.
func (st *sseStream) check(now time.Time, keepAliveAfter time.Duration) {
	if st.closed.Load() {
		return
	}
	if peerClosed(st.conn) {
		st.close()
		return
	}
	st.mu.Lock()
	if st.writing && now.Sub(st.writingSince) > writeTimeout {
		st.mu.Unlock()
		st.close() // the peer takes no bytes: closing ends the write
		return
	}
	if st.writing || now.Sub(st.lastWrite) < keepAliveAfter {
		st.mu.Unlock()
		return
	}
	st.writing, st.writingSince = true, now
	st.mu.Unlock()
	if err := st.write(keepAlive); err != nil {
		st.close()
	}
}

func (s *streamSet) add(st *sseStream) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.streams[st] = struct{}{}
	if !s.running {
		s.running = true
		go s.run(s.tick)
	}
}

func (s *streamSet) remove(st *sseStream) {
	s.mu.Lock()
	delete(s.streams, st)
	s.mu.Unlock()
}

// run checks every stream each tick; it ends when there are none.
func (s *streamSet) run(tick time.Duration) {
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	var batch []*sseStream
	for now := range ticker.C {
		s.mu.Lock()
		if len(s.streams) == 0 {
			s.running = false
			s.mu.Unlock()
			return
		}
		batch = batch[:0]
		for st := range s.streams {
			batch = append(batch, st)
		}
		keepAliveAfter := s.keepAlive
		s.mu.Unlock()
		for _, st := range batch {
			st.check(now, keepAliveAfter)
		}
		clear(batch)
	}
}

// closeAll ends every stream (the server is stopping).
func (s *streamSet) closeAll() {
	s.mu.Lock()
	all := make([]*sseStream, 0, len(s.streams))
	for st := range s.streams {
		all = append(all, st)
	}
	s.mu.Unlock()
	for _, st := range all {
		st.close()
	}
}

// count is the number of open streams.
func (s *streamSet) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.streams)
}

// serveStream serves a connect request as a stream instead of PocketBase's
// handler when it can (stream.go): the handler returns once PB_CONNECT is
// written. It keeps the stock handler when a host handler replaced the
// client, and on HTTP/2.
//
// A host's handlers see what they saw: the connect event, and every message
// through OnRealtimeMessageSend (on the connect request's event, whose
// response is the stream's: a handler writes to it no more). Code a connect
// handler runs after e.Next() runs when the stream starts, not when it ends
// (the client's discard on close still happens: the broker unregisters it).
func (h *Hub) serveStream(e *core.RealtimeConnectRequestEvent) error {
	client, ok := e.Client.(*quietClient)
	if !ok {
		return e.Next()
	}
	var sending func(*subscriptions.Message) (*subscriptions.Message, error)
	if e.App.OnRealtimeMessageSend().Length() > 0 {
		sending = messageSendHook(e.App, e.RequestEvent, client)
	}
	broker := e.App.SubscriptionsBroker()
	err := h.streams.start(e.Response, e.Request, client, e.IdleTimeout, e.MaxTimeout, sending,
		func() { broker.Register(client) },
		func() {
			broker.Unregister(client.Id())
			h.remove(client)
		})
	if errors.Is(err, errNotHijackable) {
		return e.Next()
	}
	if err != nil {
		e.App.Logger().Debug("Realtime connection closed (failed to deliver PB_CONNECT)",
			slog.String("clientId", client.Id()), slog.String("error", err.Error()))
	}
	return nil // the response is the stream's: nothing more is written here
}

// messageSendHook runs OnRealtimeMessageSend for one message as the stock
// handler does; the message to write, nil when a handler withheld it.
func messageSendHook(app core.App, re *core.RequestEvent, client subscriptions.Client) func(*subscriptions.Message) (*subscriptions.Message, error) {
	return func(msg *subscriptions.Message) (*subscriptions.Message, error) {
		event := &core.RealtimeMessageEvent{RequestEvent: re, Client: client, Message: msg}
		var out *subscriptions.Message
		err := app.OnRealtimeMessageSend().Trigger(event, func(me *core.RealtimeMessageEvent) error {
			out = me.Message
			return nil
		})
		return out, err
	}
}
