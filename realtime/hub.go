package realtime

import (
	"encoding/json"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/pocketbase/pocketbase/tools/subscriptions"

	"github.com/pbchat/pbchat/internal/chat"
)

// outboxSize bounds what a slow client may have queued before events to it
// are dropped (and logged) rather than held in memory or blocking others.
const outboxSize = 1024

// Hub knows which connected client follows which room and delivers events.
type Hub struct {
	broker Broker
	logger *slog.Logger

	// pocketBaseServed counts connections with a chat subscription that
	// PocketBase serves itself (superusers; filter, expand or fields options).
	pocketBaseServed atomic.Int64

	mu         sync.RWMutex
	clients    map[string]*client // by PocketBase client id
	pbServedBy map[string]bool    // client ids counted in pocketBaseServed
	byUser     map[string]map[*client]struct{}
	byRoom     map[string]map[*client]struct{}
}

// client is one SSE connection's chat subscriptions.
type client struct {
	pb     subscriptions.Client
	user   string
	topics map[string][]string   // room id → subscription names
	stock  map[string][]stockSub // collection name → subscriptions
	rooms  map[string]struct{}   // rooms followed: topics, and every membership when stock is set
	done   chan struct{}         // closed when the hub forgets the client

	// The client's queued events, oldest first, at most outboxSize. A pump
	// goroutine runs only while there are some: an idle connection holds no
	// goroutine and no buffer (a channel of outboxSize would hold ~40 KB each).
	queueMu sync.Mutex
	queue   []subscriptions.Message
	pumping bool
}

type stockSub struct {
	name     string // the subscription exactly as the client sent it: the SSE event name
	recordID string // "*" or one record id
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
	}
	broker.Listen(h.Deliver)
	return h
}

// Connected reports how many clients hold chat subscriptions on this node.
func (h *Hub) Connected() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.clients)
}

// set replaces a client's chat subscriptions (each subscribe request carries
// the whole set). memberRooms are the user's rooms, needed with stock subscriptions.
func (h *Hub) set(pb subscriptions.Client, user string, topics map[string][]string, stock map[string][]stockSub, memberRooms []string) {
	h.mu.Lock()
	defer h.mu.Unlock()

	old := h.clients[pb.Id()]
	if old != nil {
		h.unindex(old)
	}
	if len(topics) == 0 && len(stock) == 0 {
		if old != nil {
			delete(h.clients, pb.Id())
			close(old.done)
		}
		return
	}
	c := old
	if c == nil || c.user != user {
		if c != nil {
			close(c.done)
		}
		c = &client{pb: pb, user: user, done: make(chan struct{})}
	}
	c.topics, c.stock, c.rooms = topics, stock, map[string]struct{}{}
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
}

// setPocketBaseServed records whether a client holds a chat subscription
// that PocketBase serves itself.
func (h *Hub) setPocketBaseServed(clientID string, served bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.markPocketBaseServed(clientID, served)
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

// remove forgets a disconnected client.
func (h *Hub) remove(clientID string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.markPocketBaseServed(clientID, false)
	if c := h.clients[clientID]; c != nil {
		h.unindex(c)
		delete(h.clients, clientID)
		close(c.done)
	}
}

func (h *Hub) index(c *client) {
	addTo(h.byUser, c.user, c)
	for room := range c.rooms {
		h.follow(room, c)
	}
}

func (h *Hub) unindex(c *client) {
	removeFrom(h.byUser, c.user, c)
	for room := range c.rooms {
		h.unfollow(room, c)
	}
}

func (h *Hub) follow(room string, c *client) {
	if addTo(h.byRoom, room, c) {
		h.broker.Follow(room)
	}
}

func (h *Hub) unfollow(room string, c *client) {
	if removeFrom(h.byRoom, room, c) {
		h.broker.Unfollow(room)
	}
}

// Deliver hands an event to this node's interested clients. It only queues:
// it never waits for a client.
func (h *Hub) Deliver(ev chat.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()

	// A joining member hears their own arrival; a leaving one hears their departure.
	if ev.Type == chat.EventMemberJoined {
		for c := range h.byUser[ev.Member] {
			if len(c.stock) > 0 {
				c.rooms[ev.Room] = struct{}{}
				h.follow(ev.Room, c)
			}
		}
	}

	var topicMsg, stockMsg []byte
	send := func(c *client) {
		if ev.Except != "" && c.user == ev.Except {
			return
		}
		if ev.Type != "" {
			for _, name := range c.topics[ev.Room] {
				if topicMsg == nil {
					topicMsg = mustJSON(map[string]any{"type": ev.Type, "record": ev.Record})
				}
				c.enqueue(subscriptions.Message{Name: name, Data: topicMsg}, h.logger)
			}
		}
		if ev.Collection != "" {
			for _, s := range c.stock[ev.Collection] {
				if s.recordID == "*" || s.recordID == ev.RecordID {
					if stockMsg == nil {
						stockMsg = mustJSON(map[string]any{"action": ev.Action, "record": ev.Record})
					}
					c.enqueue(subscriptions.Message{Name: s.name, Data: stockMsg}, h.logger)
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
		for c := range h.byUser[ev.Member] {
			h.leave(c, ev.Room)
		}
	case chat.EventRoomDeleted:
		for c := range h.byRoom[ev.Room] {
			h.leave(c, ev.Room)
		}
	}
}

// leave ends a client's delivery from a room, room topic included.
func (h *Hub) leave(c *client, room string) {
	delete(c.rooms, room)
	delete(c.topics, room)
	h.unfollow(room, c)
}

func (c *client) enqueue(msg subscriptions.Message, logger *slog.Logger) {
	c.queueMu.Lock()
	if len(c.queue) >= outboxSize {
		c.queueMu.Unlock()
		logger.Warn("pbchat realtime: client too slow, event dropped", slog.String("clientId", c.pb.Id()), slog.String("event", msg.Name))
		return
	}
	c.queue = append(c.queue, msg)
	start := !c.pumping
	c.pumping = true
	c.queueMu.Unlock()
	if start {
		go c.pump()
	}
}

// pump hands queued messages to PocketBase's client one at a time, so each
// client gets its events in order and no publisher waits for a slow one.
// It ends when the queue is empty (the next enqueue starts another) or the
// client is gone.
func (c *client) pump() {
	for {
		c.queueMu.Lock()
		if len(c.queue) == 0 || c.gone() {
			c.queue, c.pumping = nil, false
			c.queueMu.Unlock()
			return
		}
		msg := c.queue[0]
		c.queue[0] = subscriptions.Message{}
		c.queue = c.queue[1:]
		c.queueMu.Unlock()
		c.pb.Send(msg)
	}
}

func (c *client) gone() bool {
	select {
	case <-c.done:
		return true
	default:
		return c.pb.IsDiscarded()
	}
}

func mustJSON(v any) []byte {
	raw, err := json.Marshal(v)
	if err != nil {
		panic(err) // a map of a string and raw JSON always marshals
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

// Publish sends an event through the broker, to every node following its room.
func (h *Hub) Publish(event chat.Event) error {
	return h.broker.Publish(event)
}
