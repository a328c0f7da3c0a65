package e2e

// The chaos test's client: what an app on the PocketBase SDK does to miss
// nothing. It keeps the cursor of every event it handles (realtime or sync),
// and after every (re)connect subscribes again (room topics of the rooms it
// is in, and/or stock subscriptions) and syncs from its cursor, following
// "more" and reloading on "reset". A room it joins is loaded once through
// the records API, after the subscription that covers it is in place (the
// spec: "joining gives the caller's own member.joined; the client then
// loads the room"); everything after that comes from events. Every event it
// gets is recorded (cursor, room) for the leak check.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/pbchat/pbchat/bench"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// chaosKind is how a client follows its rooms.
type chaosKind int

const (
	chaosTopics chaosKind = iota // a room topic per room, and chat_room_users/* to hear of new rooms
	chaosStock                   // the stock subscriptions only (they follow new rooms by themselves)
	chaosBoth                    // both (every event arrives twice)
)

func (k chaosKind) String() string { return [...]string{"topics", "stock", "both"}[k] }

var chaosStockSubs = []string{"chat_messages/*", "chat_message_reactions/*", "chat_room_users/*", "chat_rooms/*"}

// chaosEvent is an event as the client handles it, whatever way it came.
type chaosEvent struct {
	seq        int64
	cursor     string
	room       string // "" when the record does not say (a stock reaction of an unknown message)
	collection string
	action     string
	record     map[string]any
	src        byte // 't' room topic, 's' stock subscription, 'y' sync
}

func (e chaosEvent) str(key string) string { s, _ := e.record[key].(string); return s }

// chaosHeld is an event the client got, for the leak check, or a marker of
// the client's timeline (marker set: src says what, seq is the cursor then).
type chaosHeld struct {
	seq     int64
	room    string
	message string // a stock reaction's message (its room is looked up in the log)
	src     byte
	marker  bool
	at      time.Duration // a marker's time, since the test began
}

// mark adds a marker to the timeline: 'C' caught up on a connection, 'X'
// connection ended, 'Y' sync from, 'Z' sync to, 'L' room loaded.
func (c *chaosClient) mark(what byte, cursor string) {
	c.held = append(c.held, chaosHeld{seq: chaosSeq(cursor), src: what, marker: true, at: time.Since(c.began)})
}

// chaosRoom is what a client knows of one room.
type chaosRoom struct {
	name      string
	members   map[string]string // membership id → user
	messages  map[string]string // id → text
	reactions map[string]string // id → "message|user|reaction"
	reactMsg  map[string]string // reaction id → message
	ver       map[string]int64  // "collection/id" → seq of the last change applied (deletes too)
}

func newChaosRoom() *chaosRoom {
	return &chaosRoom{members: map[string]string{}, messages: map[string]string{}, reactions: map[string]string{},
		reactMsg: map[string]string{}, ver: map[string]int64{}}
}

// chaosStats are one client's counts.
type chaosStats struct {
	realtime, synced, syncCalls, loads, resets            int
	cuts, serverCloses, connectFailures, subscribeRetries int
	stale, ignored, unplaced, noCursor                    int
	inversions                                            int // realtime events after a later one on the same connection
	finalApplied                                          int
	cascadeNoCursor                                       []string // messages of reaction deletes without a cursor
	errors                                                []string
}

func (s *chaosStats) errorf(format string, args ...any) {
	if len(s.errors) < 20 {
		s.errors = append(s.errors, fmt.Sprintf(format, args...))
	}
}

// chaosClient is one SDK-like client. Everything but cut, ready and final
// is touched by its own goroutine only.
type chaosClient struct {
	index    int
	began    time.Time // the test's start, for the timeline
	user     chaosUser
	kind     chaosKind
	endpoint string // realtime: the writer or a node
	rest     string // the writer: sync, loads
	http     *http.Client
	streams  *http.Client

	cursor  string
	rooms   map[string]*chaosRoom
	pending map[string]bool  // rooms joined and not loaded yet
	selfSeq map[string]int64 // room → seq of the last own join or leave applied
	msgRoom map[string]string

	needSubscribe, needSync bool
	connMax                 int64 // the highest seq received on this connection
	applying                *int  // counts state changes while set (the final sync)

	held  []chaosHeld
	stats chaosStats

	connMu sync.Mutex
	conn   *chaosConn
	ready  atomic.Bool // connected, subscribed and caught up
	final  chan chan chaosFinal
	done   chan struct{}
}

// chaosFinal is a client's state after its final sync.
type chaosFinal struct {
	rooms map[string]*chaosRoom
	err   error
}

// chaosConn is one realtime connection.
type chaosConn struct {
	clientID string
	cancel   context.CancelFunc
	events   chan chaosRaw
	closed   chan struct{}
	cut      atomic.Bool
}

type chaosRaw struct {
	name string
	data []byte
}

func (c *chaosConn) isClosed() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

func newChaosClient(index int, user chaosUser, kind chaosKind, endpoint, rest string, api, streams *http.Client) *chaosClient {
	return &chaosClient{
		index: index, began: time.Now(), user: user, kind: kind, endpoint: endpoint, rest: rest, http: api, streams: streams,
		rooms: map[string]*chaosRoom{}, pending: map[string]bool{}, selfSeq: map[string]int64{}, msgRoom: map[string]string{},
		final: make(chan chan chaosFinal), done: make(chan struct{}),
	}
}

// cut ends the client's connection as a network failure would.
func (c *chaosClient) cut() bool {
	c.connMu.Lock()
	defer c.connMu.Unlock()
	if c.conn == nil || c.conn.isClosed() {
		return false
	}
	c.conn.cut.Store(true)
	c.conn.cancel()
	return true
}

// start takes the starting point (a cursor, then the rooms) and runs the
// client until ctx ends.
func (c *chaosClient) start(ctx context.Context) error {
	var head chaosSyncAnswer
	if err := c.getJSON(ctx, "/api/chat/sync", &head); err != nil {
		return fmt.Errorf("client %d: starting cursor: %w", c.index, err)
	}
	c.cursor = head.Cursor
	if err := c.reloadRooms(ctx, head.Cursor); err != nil {
		return fmt.Errorf("client %d: rooms: %w", c.index, err)
	}
	go c.run(ctx)
	return nil
}

// reloadRooms forgets everything and marks the caller's rooms for loading.
func (c *chaosClient) reloadRooms(ctx context.Context, cursor string) error {
	seq := chaosSeq(cursor)
	c.rooms, c.pending = map[string]*chaosRoom{}, map[string]bool{}
	for page := 1; ; page++ {
		var list struct {
			Items []struct {
				Room struct {
					ID string `json:"id"`
				} `json:"room"`
			} `json:"items"`
			TotalPages int `json:"totalPages"`
		}
		if err := c.getJSON(ctx, fmt.Sprintf("/api/chat/rooms?perPage=200&page=%d", page), &list); err != nil {
			return err
		}
		for _, item := range list.Items {
			c.rooms[item.Room.ID] = newChaosRoom()
			c.pending[item.Room.ID] = true
			c.selfSeq[item.Room.ID] = max(c.selfSeq[item.Room.ID], seq)
		}
		if page >= list.TotalPages {
			break
		}
	}
	c.needSubscribe, c.needSync = true, true
	return nil
}

func (c *chaosClient) run(ctx context.Context) {
	defer close(c.done)
	for ctx.Err() == nil {
		conn, err := c.connect(ctx)
		if err != nil {
			c.stats.connectFailures++
			chaosSleep(ctx, 100+rand.IntN(400))
			continue
		}
		c.connMu.Lock()
		c.conn = conn
		c.connMu.Unlock()
		c.needSubscribe, c.needSync = true, true
		c.connMax = 0
		if c.settle(ctx, conn) {
			c.mark('C', c.cursor)
			c.ready.Store(true)
			c.serve(ctx, conn)
		}
		c.ready.Store(false)
		conn.cancel()
		<-conn.closed
		c.drain(conn)
		c.mark('X', c.cursor)
		switch {
		case ctx.Err() != nil:
		case conn.cut.Load():
			c.stats.cuts++
		default:
			c.stats.serverCloses++
		}
		chaosSleep(ctx, rand.IntN(300))
	}
}

// serve handles the connection's events until it ends.
func (c *chaosClient) serve(ctx context.Context, conn *chaosConn) {
	for {
		select {
		case raw := <-conn.events:
			c.handleRaw(raw)
			if !c.settle(ctx, conn) {
				return
			}
		case <-conn.closed:
			return
		case reply := <-c.final:
			reply <- c.finalSync(ctx, conn)
		case <-ctx.Done():
			return
		}
	}
}

// drain handles what arrived before the connection ended.
func (c *chaosClient) drain(conn *chaosConn) {
	for {
		select {
		case raw := <-conn.events:
			c.handleRaw(raw)
		default:
			return
		}
	}
}

// finalSync syncs once more and hands over a copy of the state.
func (c *chaosClient) finalSync(ctx context.Context, conn *chaosConn) chaosFinal {
	changed := 0
	c.applying = &changed
	defer func() { c.applying = nil }()
	c.needSync = true
	deadline := time.Now().Add(30 * time.Second)
	for !c.settle(ctx, conn) {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return chaosFinal{err: fmt.Errorf("client %d: the final sync did not settle", c.index)}
		}
		chaosSleep(ctx, 200)
	}
	c.stats.finalApplied += changed
	out := make(map[string]*chaosRoom, len(c.rooms))
	for id, r := range c.rooms {
		if c.pending[id] {
			return chaosFinal{err: fmt.Errorf("client %d: room %s still not loaded", c.index, id)}
		}
		out[id] = r
	}
	return chaosFinal{rooms: out}
}

// settle brings the connection to "subscribed and caught up": subscribe
// (again) when the rooms changed, sync when asked, load rooms joined. False
// when the connection ended or cannot be used.
func (c *chaosClient) settle(ctx context.Context, conn *chaosConn) bool {
	refusals := 0
	for failures := 0; ctx.Err() == nil && !conn.isClosed(); {
		if c.needSubscribe {
			status, err := c.subscribe(ctx, conn)
			switch {
			case err != nil || status >= 500 || status == http.StatusTooManyRequests:
				c.stats.subscribeRetries++
				failures++
				chaosSleep(ctx, min(100*failures, 1000))
				continue
			case status == http.StatusForbidden:
				// A room left while away: the sync says which, then subscribe
				// again, and sync once more: what came between this sync and
				// the subscription is in neither otherwise.
				if refusals++; refusals > 5 {
					c.stats.errorf("subscribe refused 5 times after syncing")
					return false
				}
				c.needSync = true
			case status == http.StatusNoContent:
				c.needSubscribe = false
				if refusals > 0 {
					c.needSync, refusals = true, 0
				}
			case status == http.StatusNotFound:
				// The connection ended meanwhile (a node dropped it): reconnect.
				c.stats.subscribeRetries++
				return false
			default:
				c.stats.errorf("subscribe: %d", status)
				return false
			}
		}
		if c.needSync {
			if err := c.syncAll(ctx); err != nil {
				failures++
				chaosSleep(ctx, min(100*failures, 1000))
				continue
			}
			c.needSync = false
			continue
		}
		if c.needSubscribe {
			continue
		}
		if len(c.pending) > 0 {
			if err := c.loadPending(ctx); err != nil {
				failures++
				chaosSleep(ctx, min(100*failures, 1000))
			}
			continue
		}
		return true
	}
	return false
}

// subscriptions is what the client asks for: a topic per room it is in
// (those being loaded too) and/or the stock subscriptions.
func (c *chaosClient) subscriptions() []string {
	var subs []string
	if c.kind != chaosStock {
		for room := range c.rooms {
			subs = append(subs, "chat/rooms/"+room)
		}
		if c.kind == chaosTopics {
			subs = append(subs, "chat_room_users/*") // to hear of the rooms it joins
		}
	}
	if c.kind != chaosTopics {
		subs = append(subs, chaosStockSubs...)
	}
	return subs
}

func (c *chaosClient) subscribe(ctx context.Context, conn *chaosConn) (int, error) {
	body, _ := json.Marshal(map[string]any{"clientId": conn.clientID, "subscriptions": c.subscriptions()})
	status, _, err := bench.Call(ctx, c.http, http.MethodPost, c.endpoint+"/api/realtime", c.user.token, body)
	return status, err
}

// connect opens a realtime connection and waits for PB_CONNECT.
func (c *chaosClient) connect(ctx context.Context) (*chaosConn, error) {
	connCtx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(connCtx, http.MethodGet, c.endpoint+"/api/realtime", nil)
	if err != nil {
		cancel()
		return nil, err
	}
	res, err := c.streams.Do(req)
	if err != nil {
		cancel()
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		res.Body.Close()
		cancel()
		return nil, fmt.Errorf("realtime: %d", res.StatusCode)
	}
	conn := &chaosConn{cancel: cancel, events: make(chan chaosRaw, 16384), closed: make(chan struct{})}
	connected := make(chan string, 1)
	go func() {
		defer close(conn.closed)
		defer res.Body.Close()
		reader := bufio.NewReaderSize(res.Body, 64<<10)
		var name string
		var data []byte
		for {
			line, err := reader.ReadBytes('\n')
			if err != nil {
				return
			}
			line = bytes.TrimRight(line, "\r\n")
			switch {
			case bytes.HasPrefix(line, []byte("event:")):
				name = string(bytes.TrimSpace(line[len("event:"):]))
			case bytes.HasPrefix(line, []byte("data:")):
				data = bytes.TrimSpace(line[len("data:"):])
			case len(line) == 0 && name != "":
				if name == "PB_CONNECT" {
					var hello struct {
						ClientID string `json:"clientId"`
					}
					_ = json.Unmarshal(data, &hello)
					connected <- hello.ClientID
				} else {
					select {
					case conn.events <- chaosRaw{name: name, data: data}:
					case <-connCtx.Done():
						return
					}
				}
				name, data = "", nil
			}
		}
	}()
	select {
	case conn.clientID = <-connected:
		return conn, nil
	case <-conn.closed:
		return nil, errors.New("realtime: closed before PB_CONNECT")
	case <-time.After(10 * time.Second):
		cancel()
		return nil, errors.New("realtime: no PB_CONNECT within 10 s")
	}
}

// chaosPayload is a realtime event's data: {type, record, cursor} on room
// topics, {action, record, cursor} on stock subscriptions.
type chaosPayload struct {
	Type   string         `json:"type"`
	Action string         `json:"action"`
	Record map[string]any `json:"record"`
	Cursor string         `json:"cursor"`
}

var chaosTopicTypes = map[string][2]string{
	"message.created":  {"chat_messages", "create"},
	"message.updated":  {"chat_messages", "update"},
	"message.deleted":  {"chat_messages", "delete"},
	"reaction.created": {"chat_message_reactions", "create"},
	"reaction.deleted": {"chat_message_reactions", "delete"},
	"member.joined":    {"chat_room_users", "create"},
	"member.updated":   {"chat_room_users", "update"},
	"member.left":      {"chat_room_users", "delete"},
	"room.updated":     {"chat_rooms", "update"},
	"room.deleted":     {"chat_rooms", "delete"},
}

func (c *chaosClient) handleRaw(raw chaosRaw) {
	var p chaosPayload
	if err := json.Unmarshal(raw.data, &p); err != nil {
		c.stats.errorf("undecodable event %s: %v", raw.name, err)
		return
	}
	c.stats.realtime++
	if seq := chaosSeq(p.Cursor); seq > 0 && seq < c.connMax {
		c.stats.inversions++
	} else {
		c.connMax = max(c.connMax, seq)
	}
	ev := chaosEvent{cursor: p.Cursor, record: p.Record}
	if room, ok := strings.CutPrefix(raw.name, "chat/rooms/"); ok {
		if p.Type == "typing" {
			return
		}
		ca, known := chaosTopicTypes[p.Type]
		if !known {
			c.stats.errorf("unknown room event type %q", p.Type)
			return
		}
		ev.room, ev.collection, ev.action, ev.src = room, ca[0], ca[1], 't'
	} else {
		collection, _, _ := strings.Cut(raw.name, "/")
		ev.collection, ev.action, ev.src = collection, p.Action, 's'
		switch collection {
		case "chat_rooms":
			ev.room = ev.str("id")
		case "chat_message_reactions":
			ev.room = c.msgRoom[ev.str("message")]
		default:
			ev.room = ev.str("room")
		}
	}
	c.apply(ev)
}

// apply records an event and applies it to the state. Changes of a record
// are applied in cursor order (an older one arriving late is skipped); a
// room's events count only while it is loaded and after the own join.
func (c *chaosClient) apply(ev chaosEvent) {
	if ev.cursor == "" {
		if ev.collection == "chat_message_reactions" && ev.action == "delete" {
			// Checked at the end: the reactions that go with a deleted message.
			c.stats.cascadeNoCursor = append(c.stats.cascadeNoCursor, ev.str("message"))
		} else {
			c.stats.noCursor++
			c.stats.errorf("an event without a cursor: %s %s %s", ev.collection, ev.action, ev.str("id"))
		}
	} else {
		c.cursor = ev.cursor
	}
	ev.seq = chaosSeq(ev.cursor)
	held := chaosHeld{seq: ev.seq, room: ev.room, src: ev.src}
	if ev.collection == "chat_message_reactions" {
		held.message = ev.str("message")
	}
	c.held = append(c.held, held)
	if ev.collection == "chat_messages" && ev.room != "" {
		c.msgRoom[ev.str("id")] = ev.room
	}
	if ev.room == "" {
		c.stats.unplaced++
		return
	}
	if ev.seq == 0 {
		return // no cursor (counted above): it cannot be put in order
	}
	room := ev.room

	// The client's own membership: join → load the room; leave → forget it.
	if (ev.collection == "chat_room_users" && ev.str("user") == c.user.id && ev.action != "update") ||
		(ev.collection == "chat_rooms" && ev.action == "delete") {
		if ev.seq <= c.selfSeq[room] {
			c.stats.stale++
			return
		}
		c.selfSeq[room] = ev.seq
		c.changed()
		if ev.action == "create" {
			c.rooms[room] = newChaosRoom()
			c.pending[room] = true
			if c.kind != chaosStock {
				c.needSubscribe = true
			}
		} else {
			delete(c.rooms, room)
			delete(c.pending, room)
		}
		return
	}

	r := c.rooms[room]
	if r == nil || c.pending[room] || ev.seq <= c.selfSeq[room] {
		c.stats.ignored++
		return
	}
	id := ev.str("id")
	key := ev.collection + "/" + id
	if ev.seq <= r.ver[key] {
		c.stats.stale++
		return
	}
	r.ver[key] = ev.seq
	c.changed()
	switch ev.collection {
	case "chat_rooms":
		r.name = ev.str("name")
	case "chat_room_users":
		if ev.action == "delete" {
			delete(r.members, id)
		} else {
			r.members[id] = ev.str("user")
		}
	case "chat_messages":
		if ev.action == "delete" {
			delete(r.messages, id)
			for reaction, message := range r.reactMsg {
				if message == id {
					delete(r.reactions, reaction)
					delete(r.reactMsg, reaction)
				}
			}
		} else {
			r.messages[id] = ev.str("text")
		}
	case "chat_message_reactions":
		message := ev.str("message")
		if ev.action == "delete" {
			delete(r.reactions, id)
			delete(r.reactMsg, id)
		} else if _, present := r.messages[message]; present || !chaosSeen(r.ver, "chat_messages/"+message) {
			// (A reaction of a message deleted since is left out.)
			r.reactions[id] = message + "|" + ev.str("user") + "|" + ev.str("reaction")
			r.reactMsg[id] = message
		}
	}
}

func chaosSeen(ver map[string]int64, key string) bool { _, ok := ver[key]; return ok }

func (c *chaosClient) changed() {
	if c.applying != nil {
		*c.applying++
	}
}

// chaosSyncAnswer is GET /api/chat/sync's body.
type chaosSyncAnswer struct {
	Cursor string `json:"cursor"`
	More   bool   `json:"more"`
	Reset  bool   `json:"reset"`
	Events []struct {
		Cursor     string         `json:"cursor"`
		Type       string         `json:"type"`
		Room       string         `json:"room"`
		Collection string         `json:"collection"`
		Action     string         `json:"action"`
		Record     map[string]any `json:"record"`
	} `json:"events"`
}

// syncAll follows "more" from the cursor; a reset reloads the rooms.
func (c *chaosClient) syncAll(ctx context.Context) error {
	for page := 0; ; page++ {
		var answer chaosSyncAnswer
		c.stats.syncCalls++
		c.mark('Y', c.cursor)
		if err := c.getJSON(ctx, "/api/chat/sync?limit=200&since="+url.QueryEscape(c.cursor), &answer); err != nil {
			return err
		}
		if answer.Reset {
			c.stats.resets++
			c.cursor = answer.Cursor
			return c.reloadRooms(ctx, answer.Cursor)
		}
		for _, e := range answer.Events {
			c.stats.synced++
			c.apply(chaosEvent{cursor: e.Cursor, room: e.Room, collection: e.Collection, action: e.Action, record: e.Record, src: 'y'})
		}
		c.cursor = answer.Cursor
		c.mark('Z', c.cursor)
		if !answer.More {
			return nil
		}
		if page > 10000 {
			return errors.New("sync: no end to more")
		}
	}
}

// loadPending loads the rooms joined, now that the subscription covers them.
func (c *chaosClient) loadPending(ctx context.Context) error {
	for room := range c.pending {
		r, err := c.loadRoom(ctx, room)
		if err != nil {
			return err
		}
		c.stats.loads++
		for key := range r.ver {
			r.ver[key] = c.selfSeq[room]
		}
		c.rooms[room] = r
		c.held = append(c.held, chaosHeld{seq: c.selfSeq[room], room: room, src: 'L', marker: true})
		delete(c.pending, room)
		c.changed()
	}
	return nil
}

// loadRoom reads a room as its member, through the records API. A room
// that is not there (the client has been removed since) loads empty: its
// member.left is on the way.
func (c *chaosClient) loadRoom(ctx context.Context, room string) (*chaosRoom, error) {
	r := newChaosRoom()
	var rec map[string]any
	status, body, err := bench.Call(ctx, c.http, http.MethodGet, c.rest+"/api/collections/chat_rooms/records/"+room, c.user.token, nil)
	if err != nil || status >= 500 {
		return nil, fmt.Errorf("load room: %d %v", status, err)
	}
	if status == http.StatusNotFound {
		return r, nil
	}
	if status != http.StatusOK || json.Unmarshal(body, &rec) != nil {
		return nil, fmt.Errorf("load room: %d %s", status, body)
	}
	r.name, _ = rec["name"].(string)
	r.ver["chat_rooms/"+room] = 0

	list := func(collection, filter string, each func(map[string]any)) error {
		for page := 1; ; page++ {
			var out struct {
				Items []map[string]any `json:"items"`
			}
			q := url.Values{"filter": {filter}, "perPage": {"500"}, "page": {strconv.Itoa(page)}, "skipTotal": {"1"}}
			if err := c.getJSON(ctx, "/api/collections/"+collection+"/records?"+q.Encode(), &out); err != nil {
				return err
			}
			for _, item := range out.Items {
				each(item)
			}
			if len(out.Items) < 500 {
				return nil
			}
		}
	}
	str := func(m map[string]any, k string) string { s, _ := m[k].(string); return s }
	err = list("chat_room_users", fmt.Sprintf("room = '%s'", room), func(m map[string]any) {
		r.members[str(m, "id")] = str(m, "user")
		r.ver["chat_room_users/"+str(m, "id")] = 0
	})
	if err == nil {
		err = list("chat_messages", fmt.Sprintf("room = '%s'", room), func(m map[string]any) {
			r.messages[str(m, "id")] = str(m, "text")
			r.ver["chat_messages/"+str(m, "id")] = 0
			c.msgRoom[str(m, "id")] = room
		})
	}
	// No messages, no reactions: one that comes with a message posted since
	// arrives as an event (the subscription covers the room already).
	if err == nil && len(r.messages) > 0 {
		err = list("chat_message_reactions", fmt.Sprintf("message.room = '%s'", room), func(m map[string]any) {
			r.reactions[str(m, "id")] = str(m, "message") + "|" + str(m, "user") + "|" + str(m, "reaction")
			r.reactMsg[str(m, "id")] = str(m, "message")
			r.ver["chat_message_reactions/"+str(m, "id")] = 0
		})
	}
	if err != nil {
		return nil, err
	}
	return r, nil
}

func (c *chaosClient) getJSON(ctx context.Context, path string, out any) error {
	status, body, err := bench.Call(ctx, c.http, http.MethodGet, c.rest+path, c.user.token, nil)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", path, status, chaosTruncate(body))
	}
	return json.Unmarshal(body, out)
}

// chaosSeq is the position part of a cursor ("<epoch>.<seq>"); the test
// looks inside cursors, clients never need to.
func chaosSeq(cursor string) int64 {
	_, seq, _ := strings.Cut(cursor, ".")
	n, _ := strconv.ParseInt(seq, 10, 64)
	return n
}

func chaosSleep(ctx context.Context, millis int) {
	select {
	case <-ctx.Done():
	case <-time.After(time.Duration(millis) * time.Millisecond):
	}
}

func chaosTruncate(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}
