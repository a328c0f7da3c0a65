package realtime

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pbchat/pbchat/internal/chat"
)

// NATSBroker carries events between nodes over NATS: one subject per room
// ("<prefix>.room.<id>"), which a node subscribes to only while it holds a
// client interested in the room, and one for events addressed to users
// ("<prefix>.users"), which every node subscribes to.
type NATSBroker struct {
	conn   *nats.Conn
	prefix string
	logger *slog.Logger

	mu      sync.Mutex
	deliver func(chat.Event)
	rooms   map[string]*nats.Subscription
	users   *nats.Subscription
}

// ConnectNATS connects to NATS. The connection retries and reconnects by
// itself forever; while NATS is away, publishes are buffered by the client
// (and dropped past its buffer), never failing the write that produced them.
func ConnectNATS(config chat.NATSConfig, name string, logger *slog.Logger) (*NATSBroker, error) {
	conn, err := nats.Connect(config.URL,
		nats.Name(name),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			logger.Warn("pbchat: NATS disconnected", slog.Any("error", err))
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			logger.Info("pbchat: NATS reconnected", slog.String("url", c.ConnectedUrl()))
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("pbchat: connect to NATS %s: %w", config.URL, err)
	}
	return &NATSBroker{conn: conn, prefix: config.Prefix(), logger: logger, rooms: map[string]*nats.Subscription{}}, nil
}

func (b *NATSBroker) roomSubject(room string) string { return b.prefix + ".room." + room }
func (b *NATSBroker) usersSubject() string           { return b.prefix + ".users" }

// Publish sends the event once, to its room's subject (or the users subject).
func (b *NATSBroker) Publish(event chat.Event) error {
	data, err := json.Marshal(event)
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	subject := b.roomSubject(event.Room)
	if len(event.Users) > 0 {
		subject = b.usersSubject()
	}
	if err := b.conn.Publish(subject, data); err != nil {
		return fmt.Errorf("publish %s: %w", subject, err)
	}
	return nil
}

func (b *NATSBroker) Listen(deliver func(chat.Event)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.deliver = deliver
	if b.users == nil {
		sub, err := b.conn.Subscribe(b.usersSubject(), b.handle)
		if err != nil {
			b.logger.Error("pbchat: NATS subscribe", slog.String("subject", b.usersSubject()), slog.Any("error", err))
			return
		}
		b.users = sub
	}
}

func (b *NATSBroker) Follow(room string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.rooms[room]; ok {
		return
	}
	sub, err := b.conn.Subscribe(b.roomSubject(room), b.handle)
	if err != nil {
		b.logger.Error("pbchat: NATS subscribe", slog.String("room", room), slog.Any("error", err))
		return
	}
	b.rooms[room] = sub
}

func (b *NATSBroker) Unfollow(room string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if sub, ok := b.rooms[room]; ok {
		delete(b.rooms, room)
		if err := sub.Unsubscribe(); err != nil {
			b.logger.Warn("pbchat: NATS unsubscribe", slog.String("room", room), slog.Any("error", err))
		}
	}
}

// Following reports how many room subjects this node subscribes to.
func (b *NATSBroker) Following() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.rooms)
}

func (b *NATSBroker) handle(msg *nats.Msg) {
	var event chat.Event
	if err := json.Unmarshal(msg.Data, &event); err != nil {
		b.logger.Warn("pbchat: undecodable NATS event", slog.String("subject", msg.Subject), slog.Any("error", err))
		return
	}
	b.mu.Lock()
	deliver := b.deliver
	b.mu.Unlock()
	if deliver != nil {
		deliver(event)
	}
}

// Conn is the NATS connection, for request/reply between nodes.
func (b *NATSBroker) Conn() *nats.Conn { return b.conn }

// Close drains the connection.
func (b *NATSBroker) Close() {
	if err := b.conn.Drain(); err != nil {
		b.conn.Close()
	}
}
