package realtime

import (
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/pocketbase/pocketbase/tools/subscriptions"

	"github.com/pbchat/pbchat/internal/chat"
)

// removedKey marks, in a PocketBase client's store, a client the hub has
// forgotten for good (its connection ended): it is never registered again.
const removedKey = "pbchat.removed"

var (
	// errClientGone: the connection ended, was discarded, or its user's
	// authority ended while its subscriptions were being planned.
	errClientGone = errors.New("the realtime client is gone")
	// errPlanStale: more removals than the hub remembers happened while the
	// plan was computed; compute it again.
	errPlanStale = errors.New("the subscription plan is out of date")
)

// Hub knows which connected client follows which room and delivers events.
type Hub struct {
	broker Broker
	logger *slog.Logger

	// pocketBaseServed counts connections with a chat subscription that
	// PocketBase serves itself (superusers).
	pocketBaseServed atomic.Int64

	mu         sync.RWMutex
	clients    map[string]*client // by PocketBase client id
	pbServedBy map[string]bool    // client ids counted in pocketBaseServed
	byUser     map[string]map[*client]struct{}
	byRoom     map[string]map[*client]struct{}
	changes    membershipLog

	// presence reports users' first and last connections (presence.go).
	presence hubPresence

	// followMu orders the broker calls (follow.go); followed is what the
	// broker was last told.
	followMu sync.Mutex
	followed map[string]bool

	// streams are the connections served without net/http's goroutine (stream.go).
	streams *streamSet

	// pumps send the clients' queued events (pumps.go).
	pumps *pumps
}

// NewHub returns a hub that receives its events from broker.
func NewHub(broker Broker, logger *slog.Logger) *Hub {
	h := &Hub{
		broker:     broker,
		logger:     logger,
		clients:    map[string]*client{},
		pbServedBy: map[string]bool{},
		byUser:     map[string]map[*client]struct{}{},
		byRoom:     map[string]map[*client]struct{}{},
		followed:   map[string]bool{},
		streams:    newStreamSet(),
		pumps:      newPumps(),
	}
	broker.Listen(h)
	return h
}

// ticket is taken before a subscription plan is computed; install applies
// the membership changes that came after it (memberships.go).
func (h *Hub) ticket() ticket {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return ticket(h.changes.seq)
}

// install replaces a client's chat subscriptions with plan's (each
// subscribe request carries the whole set), with the membership changes
// after t applied: rooms the user left are left out, rooms the user joined
// are followed by stock subscriptions. A client whose connection ended, or
// whose user's authority ended after t, is not registered (errClientGone);
// errPlanStale asks for a new plan.
func (h *Hub) install(pb subscriptions.Client, plan Plan, t ticket) error {
	return h.apply(pb, plan.User, plan.Topics, plan.stockSubs(), plan.Rooms, plan.Presence, t)
}

// set installs subscriptions as they are now (tests).
func (h *Hub) set(pb subscriptions.Client, user string, topics map[string][]string, stock map[string][]stockSub, memberRooms []string) {
	if err := h.apply(pb, user, topics, stock, memberRooms, nil, h.ticket()); err != nil {
		h.logger.Debug("pbchat realtime: set", slog.String("clientId", pb.Id()), slog.Any("error", err))
	}
}

func (h *Hub) apply(pb subscriptions.Client, user string, topics map[string][]string, stock map[string][]stockSub, memberRooms, presence []string, t ticket) error {
	var changed []string
	defer func() { h.reconcile(changed) }()
	h.mu.Lock()
	defer h.mu.Unlock()

	if h.gone(pb) {
		return errClientGone
	}
	revoked, changes, complete := h.changes.since(t, user)
	if !complete {
		return errPlanStale
	}
	if revoked {
		if c := h.clients[pb.Id()]; c != nil {
			changed = h.forget(c)
		}
		pb.Discard()
		return errClientGone
	}
	if len(changes) > 0 {
		topics = maps.Clone(topics)
		maps.DeleteFunc(topics, func(room string, _ []string) bool { joined, ok := changes[room]; return ok && !joined })
		memberRooms = slices.DeleteFunc(slices.Clone(memberRooms), func(room string) bool { _, ok := changes[room]; return ok })
		for room, joined := range changes {
			if joined {
				memberRooms = append(memberRooms, room)
			}
		}
	}

	old := h.clients[pb.Id()]
	if old != nil {
		changed = h.unindex(old)
	}
	if len(topics) == 0 && len(stock) == 0 && len(presence) == 0 {
		if old != nil {
			delete(h.clients, pb.Id())
			close(old.done)
		}
		return nil
	}
	c := old
	if c == nil || c.user != user {
		if c != nil {
			close(c.done)
		}
		c = &client{pb: pb, user: user, done: make(chan struct{}), pumps: h.pumps}
	}
	c.topics, c.stock, c.rooms, c.presence = topics, stock, map[string]struct{}{}, presence
	for room := range topics {
		c.rooms[room] = struct{}{}
	}
	if len(stock) > 0 {
		for _, room := range memberRooms {
			c.rooms[room] = struct{}{}
		}
	}
	h.clients[pb.Id()] = c
	h.index(c)
	// Every room of the client, not only those it is the first to want: a
	// Follow that another client's install has under way must be done (on
	// a node, its NATS subscription confirmed) before this subscription is
	// answered, since the client catches up by sync right after.
	for room := range c.rooms {
		changed = append(changed, room)
	}
	return nil
}

// gone reports a client that must not be registered (h.mu held).
func (h *Hub) gone(pb subscriptions.Client) bool {
	removed, _ := pb.Get(removedKey).(bool)
	return removed || pb.IsDiscarded()
}

// setPocketBaseServed records whether a client holds a chat subscription
// that PocketBase serves itself.
func (h *Hub) setPocketBaseServed(pb subscriptions.Client, served bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if served && h.gone(pb) {
		return
	}
	h.markPocketBaseServed(pb.Id(), served)
}

func (h *Hub) markPocketBaseServed(clientID string, served bool) {
	if h.pbServedBy[clientID] == served {
		return
	}
	if served {
		h.pbServedBy[clientID] = true
		h.pocketBaseServed.Add(1)
	} else {
		delete(h.pbServedBy, clientID)
		h.pocketBaseServed.Add(-1)
	}
}

// remove forgets a client whose connection ended, for good.
func (h *Hub) remove(pb subscriptions.Client) {
	var changed []string
	h.mu.Lock()
	pb.Set(removedKey, true)
	h.markPocketBaseServed(pb.Id(), false)
	if c := h.clients[pb.Id()]; c != nil {
		changed = h.forget(c)
	}
	h.mu.Unlock()
	h.reconcile(changed)
}

// forget drops a client from the hub and returns the rooms whose interest
// changed (h.mu held).
func (h *Hub) forget(c *client) []string {
	if h.clients[c.pb.Id()] != c {
		return nil
	}
	changed := h.unindex(c)
	delete(h.clients, c.pb.Id())
	close(c.done)
	return changed
}

// drop disconnects a client: its connection ends, the SDK reconnects and
// the client resynchronises (h.mu held).
func (h *Hub) drop(c *client, reason string) []string {
	h.logger.Warn("pbchat realtime: disconnecting a client", slog.String("reason", reason),
		slog.String("clientId", c.pb.Id()), slog.String("user", c.user))
	c.pb.Discard()
	return h.forget(c)
}

// discard disconnects clients.
func (h *Hub) discard(clients []*client, reason string) {
	var changed []string
	h.mu.Lock()
	for _, c := range clients {
		changed = append(changed, h.drop(c, reason)...)
	}
	h.mu.Unlock()
	h.reconcile(changed)
}

// index and unindex return the rooms that gained their first or lost their
// last interested client (h.mu held).
func (h *Hub) index(c *client) (changed []string) {
	if addTo(h.byUser, c.user, c) {
		h.presence.touch(c.user)
	}
	for room := range c.rooms {
		if addTo(h.byRoom, room, c) {
			changed = append(changed, room)
		}
	}
	return changed
}

func (h *Hub) unindex(c *client) (changed []string) {
	if removeFrom(h.byUser, c.user, c) {
		h.presence.touch(c.user)
	}
	for room := range c.rooms {
		if removeFrom(h.byRoom, room, c) {
			changed = append(changed, room)
		}
	}
	return changed
}

// The payloads: {"type","record","cursor"} on room topics and PocketBase's
// {"action","record"} plus "cursor" on stock subscriptions. The cursor is
// the event log's position after the event; typing has none.
type topicPayload struct {
	Type   string          `json:"type"`
	Record json.RawMessage `json:"record"`
	Cursor string          `json:"cursor,omitempty"`
}

type stockPayload struct {
	Action string          `json:"action"`
	Record json.RawMessage `json:"record"`
	Cursor string          `json:"cursor,omitempty"`
}

// Deliver hands an event to this node's interested clients. It only queues:
// it never waits for a client.
func (h *Hub) Deliver(ev chat.Event) {
	var changed []string
	var joiners []*client
	h.mu.Lock()

	if ev.Type == chat.EventAuthRevoked {
		for _, user := range ev.Users {
			h.changes.add(membership{user: user})
			for c := range h.byUser[user] {
				changed = append(changed, h.drop(c, "token revoked")...)
			}
		}
		h.mu.Unlock()
		h.reconcile(changed)
		return
	}

	// A joining member hears their own arrival; a leaving one hears their departure.
	if ev.Type == chat.EventMemberJoined {
		h.changes.add(membership{user: ev.Member, room: ev.Room, joined: true})
		for c := range h.byUser[ev.Member] {
			if len(c.stock) > 0 {
				c.rooms[ev.Room] = struct{}{}
				addTo(h.byRoom, ev.Room, c)
				joiners = append(joiners, c)
			}
		}
	}

	var topicMsg, stockMsg, presenceMsg []byte
	// Clients that had nothing queued go to the pump workers together,
	// after the loop.
	var starts []*client
	send := func(c *client) {
		if ev.Except != "" && c.user == ev.Except {
			return
		}
		// put queues one event; false once the client was dropped.
		put := func(msg queued) bool {
			ok, start := c.add(msg)
			if start {
				starts = append(starts, c)
			}
			if !ok {
				changed = append(changed, h.drop(c, "too slow: its outbox is full")...)
			}
			return ok
		}
		if ev.Type != "" {
			for _, name := range c.topics[ev.Room] {
				if topicMsg == nil {
					topicMsg = mustJSON(topicPayload{Type: ev.Type, Record: ev.Record, Cursor: ev.Cursor})
				}
				if !put(queued{Message: subscriptions.Message{Name: name, Data: topicMsg}}) {
					return
				}
			}
		}
		for _, msg := range c.presenceMessages(ev, &presenceMsg) {
			if !put(msg) {
				return
			}
		}
		if ev.Collection != "" {
			for _, s := range c.stock[ev.Collection] {
				if s.recordID != "*" && s.recordID != ev.RecordID {
					continue
				}
				msg := queued{Message: subscriptions.Message{Name: s.name, Data: stockMsg}}
				if s.options != nil {
					msg = s.options.queue(c.pb, s.name, ev)
				} else if stockMsg == nil {
					stockMsg = mustJSON(stockPayload{Action: ev.Action, Record: ev.Record, Cursor: ev.Cursor})
					msg.Data = stockMsg
				}
				if !put(msg) {
					return
				}
			}
		}
	}
	if len(ev.Users) > 0 {
		for _, user := range ev.Users {
			for c := range h.byUser[user] {
				send(c)
			}
		}
	} else {
		for c := range h.byRoom[ev.Room] {
			send(c)
		}
	}

	switch ev.Type {
	case chat.EventMemberLeft:
		h.changes.add(membership{user: ev.Member, room: ev.Room})
		for c := range h.byUser[ev.Member] {
			changed = append(changed, h.leave(c, ev.Room)...)
		}
	case chat.EventRoomDeleted:
		h.changes.add(membership{room: ev.Room})
		for c := range h.byRoom[ev.Room] {
			changed = append(changed, h.leave(c, ev.Room)...)
		}
	}
	h.mu.Unlock()
	h.pumps.enqueueAll(starts)

	if len(joiners) > 0 {
		h.catchUp(ev.Room, joiners)
	}
	h.reconcile(changed)
}

// leave ends a client's delivery from a room, room topic included (h.mu held).
func (h *Hub) leave(c *client, room string) []string {
	delete(c.rooms, room)
	delete(c.topics, room)
	if removeFrom(h.byRoom, room, c) {
		return []string{room}
	}
	return nil
}

// Lost disconnects the clients that may have missed events of room (all
// clients when room is ""): they reconnect and resynchronise.
func (h *Hub) Lost(room string) {
	var changed []string
	h.mu.Lock()
	if room == "" {
		for _, c := range h.clients {
			changed = append(changed, h.drop(c, "events may have been lost")...)
		}
	} else {
		for c := range h.byRoom[room] {
			changed = append(changed, h.drop(c, "events of a room may have been lost")...)
		}
	}
	h.mu.Unlock()
	h.reconcile(changed)
}

func mustJSON(v any) []byte {
	raw, err := json.Marshal(v)
	if err != nil {
		panic(err) // strings and raw JSON always marshal
	}
	return raw
}

func addTo(index map[string]map[*client]struct{}, key string, c *client) (first bool) {
	set := index[key]
	if set == nil {
		set = map[*client]struct{}{}
		index[key] = set
	}
	if _, ok := set[c]; ok {
		return false
	}
	set[c] = struct{}{}
	return len(set) == 1
}

func removeFrom(index map[string]map[*client]struct{}, key string, c *client) (last bool) {
	set := index[key]
	if _, ok := set[c]; !ok {
		return false
	}
	delete(set, c)
	if len(set) == 0 {
		delete(index, key)
		return true
	}
	return false
}

// Publish sends an event through the broker, to every hub that needs it.
func (h *Hub) Publish(event chat.Event) error {
	return h.broker.Publish(event)
}

// Connected reports whether user has a connection to this process that
// follows room's topic (chat/rooms/{id}: the room is open in a client).
// Only this process's connections count: on a cluster, the writer does not
// know the connections of realtime nodes.
func (h *Hub) Connected(user, room string) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for c := range h.byUser[user] {
		if _, ok := c.topics[room]; ok {
			return true
		}
	}
	return false
}
