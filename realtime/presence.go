package realtime

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/pocketbase/pocketbase/tools/security"
	"github.com/pocketbase/pocketbase/tools/subscriptions"

	"github.com/pbchat/pbchat/internal/chat"
)

// Presence: a user is online while they hold at least one realtime
// connection with a chat subscription (a room topic, a chat collection or
// chat/presence) on the writer or on any realtime node.
//
// Each hub counts its connections per user (byUser) and reports a user's
// first connection and last disconnection to a PresenceSink. The writer's
// Presence table aggregates them per source: its own hub in process, each
// realtime node over NATS ("<prefix>.presence"). A node also sends the
// users online on it every PresenceInterval; the writer forgets a node's
// users that it has not heard of for PresenceExpiry (a node that died, or
// restarted under a new id), so nobody stays online for ever.

// PresenceSink receives a hub's presence changes.
type PresenceSink interface {
	// SetOnline says that user has (online) or no longer has (!online) a
	// connection on the hub.
	SetOnline(user string, online bool)
}

// hubPresence is the hub's side: users whose count went 0→1 or 1→0 are
// marked (under h.mu) and reported once h.mu is released, in order.
type hubPresence struct {
	pending atomic.Bool
	dirty   map[string]struct{} // under h.mu

	mu       sync.Mutex // orders reports
	sink     PresenceSink
	reported map[string]bool
}

// touch marks a user whose connection count went to or from zero (h.mu held).
func (p *hubPresence) touch(user string) {
	if user == "" {
		return
	}
	if p.dirty == nil {
		p.dirty = map[string]struct{}{}
	}
	p.dirty[user] = struct{}{}
	p.pending.Store(true)
}

// ReportPresence sends this hub's presence changes to sink, starting with
// the users connected now.
func (h *Hub) ReportPresence(sink PresenceSink) {
	h.presence.mu.Lock()
	h.presence.sink = sink
	h.presence.mu.Unlock()
	h.mu.Lock()
	for user := range h.byUser {
		h.presence.touch(user)
	}
	h.mu.Unlock()
	h.reportPresence()
}

// reportPresence tells the sink what changed since the last report. It
// reads the state under the report lock, so reports made concurrently end
// in the hub's latest state. Never called with h.mu held.
func (h *Hub) reportPresence() {
	if !h.presence.pending.Load() {
		return
	}
	p := &h.presence
	p.mu.Lock()
	defer p.mu.Unlock()
	h.mu.Lock()
	p.pending.Store(false)
	dirty := p.dirty
	p.dirty = nil
	now := make(map[string]bool, len(dirty))
	for user := range dirty {
		now[user] = len(h.byUser[user]) > 0
	}
	h.mu.Unlock()
	if p.sink == nil {
		return
	}
	if p.reported == nil {
		p.reported = map[string]bool{}
	}
	for user, online := range now {
		if p.reported[user] == online {
			continue
		}
		if online {
			p.reported[user] = true
		} else {
			delete(p.reported, user)
		}
		p.sink.SetOnline(user, online)
	}
}

// presenceMessages queues a presence event for the client's chat/presence
// subscriptions; msg caches the payload across clients.
func (c *client) presenceMessages(ev chat.Event, msg *[]byte) []queued {
	if ev.Room != "" || (ev.Type != chat.EventPresenceOnline && ev.Type != chat.EventPresenceOffline) {
		return nil
	}
	var out []queued
	for _, name := range c.presence {
		if *msg == nil {
			*msg = mustJSON(topicPayload{Type: ev.Type, Record: ev.Record})
		}
		out = append(out, queued{Message: subscriptions.Message{Name: name, Data: *msg}})
	}
	return out
}

// PresenceChange is a user coming online (on any hub) or going offline (on
// every hub), at At.
type PresenceChange struct {
	User   string
	Online bool
	At     time.Time
}

// writerSource is the writer's own hub: reported in process, never expired.
const writerSource = ""

// Presence is the writer's table of who is online, per source.
type Presence struct {
	expiry time.Duration
	logger *slog.Logger

	mu      sync.Mutex
	entries map[string]map[string]time.Time // user → source → last heard (zero: never expires)
	queue   []PresenceChange
	wake    chan struct{}
	handle  func(PresenceChange)
	done    chan struct{}
	stopped chan struct{}
	started bool
}

// NewPresence returns an empty table that forgets a node's users expiry
// after it last heard of them.
func NewPresence(expiry time.Duration, logger *slog.Logger) *Presence {
	return &Presence{
		expiry:  expiry,
		logger:  logger,
		entries: map[string]map[string]time.Time{},
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
}

// Start hands every change to handle, in order, on one goroutine, and
// expires silent nodes' users, until Close.
func (p *Presence) Start(handle func(PresenceChange)) {
	p.mu.Lock()
	if p.started {
		p.mu.Unlock()
		return
	}
	p.started, p.handle = true, handle
	p.mu.Unlock()
	go p.run()
}

func (p *Presence) run() {
	defer close(p.stopped)
	tick := time.NewTicker(max(p.expiry/4, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-p.done:
			p.drain()
			return
		case <-p.wake:
			p.drain()
		case now := <-tick.C:
			p.expire(now)
			p.drain()
		}
	}
}

// drain hands the queued changes to the handler.
func (p *Presence) drain() {
	for {
		p.mu.Lock()
		queue := p.queue
		p.queue = nil
		p.mu.Unlock()
		if len(queue) == 0 {
			return
		}
		for _, change := range queue {
			p.handle(change)
		}
	}
}

// Close stops the handling goroutine once the queued changes are handled.
func (p *Presence) Close() {
	p.mu.Lock()
	started := p.started
	select {
	case <-p.done:
		started = false
	default:
		close(p.done)
	}
	p.mu.Unlock()
	if started {
		<-p.stopped
	}
}

// Online reports which of users are online now.
func (p *Presence) Online(users ...string) map[string]bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]bool, len(users))
	for _, user := range users {
		out[user] = len(p.entries[user]) > 0
	}
	return out
}

// OnlineUsers returns every user online now.
func (p *Presence) OnlineUsers() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, 0, len(p.entries))
	for user := range p.entries {
		out = append(out, user)
	}
	slices.Sort(out)
	return out
}

// Local is the sink of the writer's own hub.
func (p *Presence) Local() PresenceSink { return localPresence{p} }

type localPresence struct{ p *Presence }

func (l localPresence) SetOnline(user string, online bool) {
	l.p.set(writerSource, user, online, time.Time{})
}

// set records user on source (heard at now; zero: never expires) or takes
// them off it, and queues the change of the user's presence, if any.
func (p *Presence) set(source, user string, online bool, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	sources := p.entries[user]
	if online {
		if sources == nil {
			sources = map[string]time.Time{}
			p.entries[user] = sources
			p.changed(user, true)
		}
		sources[source] = now
		return
	}
	if _, ok := sources[source]; !ok {
		return
	}
	delete(sources, source)
	if len(sources) == 0 {
		delete(p.entries, user)
		p.changed(user, false)
	}
}

// dropSource takes every user off source (a node that stopped).
func (p *Presence) dropSource(source string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for user, sources := range p.entries {
		if _, ok := sources[source]; ok {
			delete(sources, source)
			if len(sources) == 0 {
				delete(p.entries, user)
				p.changed(user, false)
			}
		}
	}
}

// expire takes users off the nodes that have not mentioned them for expiry.
func (p *Presence) expire(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for user, sources := range p.entries {
		for source, heard := range sources {
			if !heard.IsZero() && now.Sub(heard) > p.expiry {
				delete(sources, source)
			}
		}
		if len(sources) == 0 {
			delete(p.entries, user)
			p.changed(user, false)
		}
	}
}

// changed queues a change for the handler (p.mu held).
func (p *Presence) changed(user string, online bool) {
	p.queue = append(p.queue, PresenceChange{User: user, Online: online, At: time.Now().UTC()})
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// presenceReport travels from a node to the writer on "<prefix>.presence":
// a change (User, Online), the users online on the node (All, every
// interval), or the node's end (Gone).
type presenceReport struct {
	Node   string   `json:"node"`
	User   string   `json:"user,omitempty"`
	Online bool     `json:"online,omitempty"`
	All    []string `json:"all,omitempty"`
	Gone   bool     `json:"gone,omitempty"`
}

// maxReportUsers bounds the users of one heartbeat message.
const maxReportUsers = 8192

func (s subjects) presence() string { return s.prefix + ".presence" }

// ServePresence feeds table with the realtime nodes' presence reports.
func (b *NATSBroker) ServePresence(table *Presence) error {
	_, err := b.conn.Subscribe(b.subjects.presence(), func(msg *nats.Msg) {
		var report presenceReport
		if err := json.Unmarshal(msg.Data, &report); err != nil || report.Node == "" {
			b.logger.Warn("pbchat: undecodable presence report", slog.Any("error", err))
			return
		}
		table.report(report, time.Now())
	})
	if err != nil {
		return fmt.Errorf("pbchat: NATS subscribe %s: %w", b.subjects.presence(), err)
	}
	return nil
}

// report applies a node's report.
func (p *Presence) report(r presenceReport, now time.Time) {
	source := "node:" + r.Node
	switch {
	case r.Gone:
		p.dropSource(source)
	case r.User != "":
		p.set(source, r.User, r.Online, now)
	default:
		for _, user := range r.All {
			p.set(source, user, true, now)
		}
	}
}

// nodePresence is a realtime node's sink: it publishes changes to the
// writer at once and the users online on the node every interval.
type nodePresence struct {
	id       string
	publish  func(subject string, data []byte) error
	subject  string
	logger   *slog.Logger
	interval time.Duration

	mu     sync.Mutex
	online map[string]struct{}
	done   chan struct{}
	closed bool
}

// presenceSink starts the node's reporting; it ends with close or the broker.
func (b *NATSNodeBroker) presenceSink() *nodePresence {
	interval := b.presenceInterval
	if interval <= 0 {
		interval = chat.NATSConfig{}.PresenceInterval()
	}
	n := &nodePresence{
		id:       security.RandomString(12),
		publish:  b.conn.Publish,
		subject:  b.subjects.presence(),
		logger:   b.logger,
		interval: interval,
		online:   map[string]struct{}{},
		done:     make(chan struct{}),
	}
	go n.heartbeat(b.done)
	return n
}

func (n *nodePresence) SetOnline(user string, online bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	if online {
		n.online[user] = struct{}{}
	} else {
		delete(n.online, user)
	}
	n.send(presenceReport{Node: n.id, User: user, Online: online})
}

func (n *nodePresence) heartbeat(brokerDone <-chan struct{}) {
	tick := time.NewTicker(n.interval)
	defer tick.Stop()
	for {
		select {
		case <-brokerDone:
			return
		case <-n.done:
			return
		case <-tick.C:
			n.mu.Lock()
			users := make([]string, 0, len(n.online))
			for user := range n.online {
				users = append(users, user)
			}
			for chunk := range slices.Chunk(users, maxReportUsers) {
				n.send(presenceReport{Node: n.id, All: chunk})
			}
			n.mu.Unlock()
		}
	}
}

// send publishes a report (n.mu held). A report lost while NATS is away is
// made good by the next heartbeat, or by the writer's expiry.
func (n *nodePresence) send(r presenceReport) {
	data, _ := json.Marshal(r)
	if err := n.publish(n.subject, data); err != nil {
		n.logger.Debug("pbchat: NATS presence report", slog.Any("error", err))
	}
}

// close tells the writer that this node's users are gone from it.
func (n *nodePresence) close() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	n.closed = true
	close(n.done)
	n.send(presenceReport{Node: n.id, Gone: true})
}
