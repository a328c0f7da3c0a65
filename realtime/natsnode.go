package realtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pbchat/pbchat/internal/chat"
)

const (
	// inboxSize bounds the events a node has received and not handed to its
	// hub yet; past it NATS drops them and every client resynchronises.
	inboxSize = 1 << 16
	// Subscriptions that fail are retried with a delay that doubles up to retryMax.
	retryMin = 100 * time.Millisecond
	retryMax = 5 * time.Second
	// flushTimeout bounds the wait for NATS to confirm a new subscription.
	flushTimeout = 2 * time.Second
	// replayTimeout bounds a catch-up request to the writer.
	replayTimeout = 2 * time.Second
)

// NATSNodeBroker is a realtime node's broker: it receives the writer's
// events over NATS and publishes none. Every subscription feeds one channel
// read by one goroutine, so the hub gets events in the order the writer
// published them whatever subject they came on (a member.left before the
// room's next message).
type NATSNodeBroker struct {
	conn      *nats.Conn
	subjects  subjects
	logger    *slog.Logger
	inbox     chan *nats.Msg
	done      chan struct{}
	subscribe func(subject string, inbox chan *nats.Msg) (*nats.Subscription, error)
	retryMin  time.Duration
	retryMax  time.Duration
	// presenceInterval: how often the node reports who is online (presence.go).
	presenceInterval time.Duration

	mu       sync.Mutex
	listener Listener
	users    *subscription
	rooms    map[string]*subscription
	// caughtUp holds, per room, the last seq a catch-up delivered: the same
	// events arriving on the room's subject afterwards are skipped.
	caughtUp map[string]uint64
	closed   bool

	// The dispatching goroutine's own.
	origin   string   // the writer process the events come from
	current  envelope // the event being delivered
	replayed []envelope
}

// subscription is one subject the node subscribes to, retried until it works.
type subscription struct {
	subject string
	room    string // "" for the users subject
	sub     *nats.Subscription
}

// ConnectNATSNode connects a realtime node to NATS. The connection retries
// and reconnects by itself forever; after each outage the hub hears that
// events may have been lost, and its clients resynchronise.
func ConnectNATSNode(config chat.NATSConfig, name string, logger *slog.Logger) (*NATSNodeBroker, error) {
	b := newNATSNodeBroker(config, logger)
	ready := make(chan struct{})
	var connectedAtStart bool
	conn, err := connectNATS(config, name, logger,
		// The first connection when NATS was not there at start, and every
		// reconnection: what was published meanwhile never reached this node.
		nats.ConnectHandler(func(*nats.Conn) {
			if <-ready; !connectedAtStart {
				b.lost("")
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			logger.Info("pbchat: NATS reconnected", slog.String("url", c.ConnectedUrl()))
			b.lost("")
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrSlowConsumer) && sub != nil && b.carriesEvents(sub.Subject) {
				logger.Error("pbchat: NATS events dropped: this node fell behind", slog.Any("error", err))
				b.lost("")
				return
			}
			logger.Warn("pbchat: NATS", slog.Any("error", err))
		}),
	)
	if err != nil {
		close(ready)
		return nil, err
	}
	b.conn = conn
	connectedAtStart = conn.IsConnected()
	close(ready)
	go b.dispatch()
	return b, nil
}

func newNATSNodeBroker(config chat.NATSConfig, logger *slog.Logger) *NATSNodeBroker {
	b := &NATSNodeBroker{
		subjects: subjects{config.Prefix()},
		logger:   logger,
		inbox:    make(chan *nats.Msg, inboxSize),
		done:     make(chan struct{}),
		rooms:    map[string]*subscription{},
		caughtUp: map[string]uint64{},
		retryMin: retryMin,
		retryMax: retryMax,

		presenceInterval: config.PresenceInterval(),
	}
	b.subscribe = func(subject string, inbox chan *nats.Msg) (*nats.Subscription, error) {
		return b.conn.ChanSubscribe(subject, inbox)
	}
	return b
}

// carriesEvents reports whether subject is one of the writer's event subjects.
func (b *NATSNodeBroker) carriesEvents(subject string) bool {
	return subject == b.subjects.users() || strings.HasPrefix(subject, b.subjects.room(""))
}

// Publish refuses: the writer publishes, nodes only deliver.
func (b *NATSNodeBroker) Publish(chat.Event) error {
	return errors.New("a realtime node does not publish events")
}

// Listen sets the hub and subscribes to what every node receives.
func (b *NATSNodeBroker) Listen(listener Listener) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.listener = listener
	if b.users == nil {
		b.users = &subscription{subject: b.subjects.users()}
		b.start(b.users)
	}
}

// Follow subscribes to room's subject. Without catch-up it waits until NATS
// has the subscription, so that every event published after Follow returns
// arrives. With catch-up (only while the hub handles an event, on the
// dispatching goroutine) it asks the writer for the room's events published
// after that event, which are delivered next.
func (b *NATSNodeBroker) Follow(room string, catchUp bool) error {
	b.mu.Lock()
	s, following := b.rooms[room]
	if !following {
		s = &subscription{subject: b.subjects.room(room), room: room}
		b.rooms[room] = s
		b.start(s)
	}
	subscribed := s.sub != nil
	b.mu.Unlock()

	if !catchUp {
		if !following && subscribed {
			if err := b.conn.FlushTimeout(flushTimeout); err != nil {
				// NATS is away: its return reports the loss to the hub.
				b.logger.Debug("pbchat: NATS flush", slog.String("room", room), slog.Any("error", err))
			}
		}
		return nil
	}
	if !subscribed {
		return fmt.Errorf("catch up room %s: not subscribed yet", room)
	}
	return b.catchUp(room)
}

// catchUp fetches room's events published after the one being delivered.
// The request follows the subscription on the same connection: NATS routes
// to the subscription everything the writer publishes after answering.
func (b *NATSNodeBroker) catchUp(room string) error {
	after := b.current
	if after.Seq == 0 {
		return fmt.Errorf("catch up room %s: no event being delivered", room)
	}
	req, _ := json.Marshal(replayRequest{Origin: after.Origin, Room: room, After: after.Seq})
	msg, err := b.conn.Request(b.subjects.replay(), req, replayTimeout)
	if err != nil {
		return fmt.Errorf("catch up room %s: %w", room, err)
	}
	var answer replayAnswer
	if err := json.Unmarshal(msg.Data, &answer); err != nil {
		return fmt.Errorf("catch up room %s: %w", room, err)
	}
	if !answer.Complete {
		return fmt.Errorf("catch up room %s: the writer no longer holds its events after %d", room, after.Seq)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	upTo := b.caughtUp[room] // events queued by an earlier catch-up already
	for _, raw := range answer.Events {
		var env envelope
		if err := json.Unmarshal(raw, &env); err != nil {
			return fmt.Errorf("catch up room %s: %w", room, err)
		}
		if env.Seq > upTo {
			b.replayed = append(b.replayed, env)
			upTo = env.Seq
		}
	}
	if upTo > 0 {
		b.caughtUp[room] = upTo
	}
	return nil
}

// Unfollow ends the subscription to room's subject.
func (b *NATSNodeBroker) Unfollow(room string) {
	b.mu.Lock()
	s := b.rooms[room]
	delete(b.rooms, room)
	delete(b.caughtUp, room)
	var sub *nats.Subscription
	if s != nil {
		sub = s.sub
	}
	b.mu.Unlock()
	if sub != nil {
		if err := sub.Unsubscribe(); err != nil {
			b.logger.Warn("pbchat: NATS unsubscribe", slog.String("room", room), slog.Any("error", err))
		}
	}
}

// start subscribes s, or retries in the background. Called with b.mu held.
func (b *NATSNodeBroker) start(s *subscription) {
	sub, err := b.subscribe(s.subject, b.inbox)
	if err == nil {
		s.sub = sub
		return
	}
	b.logger.Error("pbchat: NATS subscribe, retrying", slog.String("subject", s.subject), slog.Any("error", err))
	go b.retry(s)
}

// retry subscribes s with a growing delay until it works, s is no longer
// wanted or the broker closes. Events published meanwhile were missed: the
// hub hears it once the subscription is in place.
func (b *NATSNodeBroker) retry(s *subscription) {
	delay := b.retryMin
	for {
		select {
		case <-b.done:
			return
		case <-time.After(delay):
		}
		b.mu.Lock()
		if b.closed || !b.wanted(s) {
			b.mu.Unlock()
			return
		}
		sub, err := b.subscribe(s.subject, b.inbox)
		if err == nil {
			s.sub = sub
			b.mu.Unlock()
			b.logger.Info("pbchat: NATS subscribed after retrying", slog.String("subject", s.subject))
			b.lost(s.room)
			return
		}
		b.mu.Unlock()
		b.logger.Warn("pbchat: NATS subscribe, retrying", slog.String("subject", s.subject), slog.Any("error", err))
		delay = min(2*delay, b.retryMax)
	}
}

// wanted reports whether s is still one of the broker's subscriptions (b.mu held).
func (b *NATSNodeBroker) wanted(s *subscription) bool {
	if s.room == "" {
		return b.users == s
	}
	return b.rooms[s.room] == s
}

func (b *NATSNodeBroker) lost(room string) {
	b.mu.Lock()
	listener := b.listener
	b.mu.Unlock()
	if listener != nil {
		listener.Lost(room)
	}
}

// dispatch hands the inbox's events to the hub, one at a time, in order.
func (b *NATSNodeBroker) dispatch() {
	for {
		select {
		case <-b.done:
			return
		case msg := <-b.inbox:
			var env envelope
			if err := json.Unmarshal(msg.Data, &env); err != nil {
				b.logger.Warn("pbchat: undecodable NATS event", slog.String("subject", msg.Subject), slog.Any("error", err))
				continue
			}
			b.handle(env)
		}
	}
}

func (b *NATSNodeBroker) handle(env envelope) {
	restarted := b.origin != "" && env.Origin != b.origin
	b.origin = env.Origin
	b.mu.Lock()
	listener := b.listener
	if restarted {
		clear(b.caughtUp) // another writer process: its numbers start again
	}
	skip := false
	if upTo, ok := b.caughtUp[env.Room]; ok && env.Room != "" {
		if skip = env.Seq <= upTo; !skip {
			delete(b.caughtUp, env.Room)
		}
	}
	b.mu.Unlock()
	if listener == nil {
		return
	}
	if restarted || env.Type == eventsLost {
		// The writer restarted (what it had published and not sent is gone)
		// or could not publish some events.
		listener.Lost("")
	}
	if skip || env.Type == eventsLost {
		return
	}
	b.deliver(listener, env)
	for len(b.replayed) > 0 {
		next := b.replayed[0]
		b.replayed = b.replayed[1:]
		b.deliver(listener, next)
	}
}

func (b *NATSNodeBroker) deliver(listener Listener, env envelope) {
	b.current = env
	listener.Deliver(env.Event)
	b.current = envelope{}
}

// Ask sends a request to the node that answers it (see Answer) and returns its reply.
func (b *NATSNodeBroker) Ask(request []byte, timeout time.Duration) ([]byte, error) {
	msg, err := b.conn.Request(b.subjects.subscribe(), request, timeout)
	if err != nil {
		return nil, err
	}
	return msg.Data, nil
}

// Answer serves the other nodes' requests: handle answers those that are
// this node's (ok) and ignores the rest. Each request is handled on its own
// goroutine. stop ends it.
func (b *NATSNodeBroker) Answer(handle func(request []byte) (reply []byte, ok bool)) (stop func(), err error) {
	sub, err := b.conn.Subscribe(b.subjects.subscribe(), func(msg *nats.Msg) {
		go func() {
			if reply, ok := handle(msg.Data); ok {
				if err := msg.Respond(reply); err != nil {
					b.logger.Warn("pbchat: NATS answer", slog.Any("error", err))
				}
			}
		}()
	})
	if err != nil {
		return nil, fmt.Errorf("pbchat: NATS subscribe %s: %w", b.subjects.subscribe(), err)
	}
	return func() { _ = sub.Unsubscribe() }, nil
}

// State reports whether NATS is connected, and the connection's state in a word.
func (b *NATSNodeBroker) State() (connected bool, state string) {
	status := b.conn.Status()
	return status == nats.CONNECTED, strings.ToLower(status.String())
}

// Close stops delivery and closes the connection.
func (b *NATSNodeBroker) Close() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	b.mu.Unlock()
	close(b.done)
	b.conn.Close()
}
