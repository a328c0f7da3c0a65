package realtime

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/pocketbase/pocketbase/tools/security"

	"github.com/pbchat/pbchat/internal/chat"
)

// Over NATS, the writer publishes every event once, numbered (origin, seq):
//
//   - "<prefix>.room.<id>": a room's events, which a realtime node subscribes
//     to only while it holds a client interested in the room;
//   - "<prefix>.users": what every node must see: events addressed to users
//     (a new room, an upload, a revocation) and the events that change who
//     follows a room (member.*, room.deleted), so that a node learns of a
//     membership whatever rooms it follows;
//   - "<prefix>.replay": the writer answers a node that has just started
//     following a room because of a membership event with the room's events
//     published after it, which the new subscription could have missed;
//   - "<prefix>.subscribe": a node asks the others for the one holding a client.
//
// The writer delivers to its own clients in process, as without NATS: an
// outage of the bus costs its clients nothing.

// replayWindow is how many of the last published events the writer keeps for
// catch-up requests: a node whose request comes later gets a refusal and
// has the clients concerned resynchronise.
const replayWindow = 4096

// maxReplayBytes bounds a catch-up answer (NATS' default payload limit is 1 MB).
const maxReplayBytes = 512 << 10

type subjects struct{ prefix string }

func (s subjects) room(id string) string { return s.prefix + ".room." + id }
func (s subjects) users() string         { return s.prefix + ".users" }
func (s subjects) replay() string        { return s.prefix + ".replay" }
func (s subjects) subscribe() string     { return s.prefix + ".subscribe" }

// of is the subject an event is published on.
func (s subjects) of(event chat.Event) string {
	if len(event.Users) > 0 || event.Member != "" || event.Type == chat.EventRoomDeleted || event.Room == "" {
		return s.users()
	}
	return s.room(event.Room)
}

// envelope is an event as it travels over NATS: numbered by the writer that
// published it (origin: one per writer process), in publishing order.
type envelope struct {
	Origin string `json:"origin"`
	Seq    uint64 `json:"seq"`
	chat.Event
}

type replayRequest struct {
	Origin string `json:"origin"`
	Room   string `json:"room"`
	After  uint64 `json:"after"`
}

// replayAnswer holds the room's events after the request's, oldest first;
// Complete is false when the writer can no longer tell them all.
type replayAnswer struct {
	Complete bool              `json:"complete"`
	Events   []json.RawMessage `json:"events,omitempty"`
}

// NATSBroker is the writer's broker with NATS: it delivers every event to
// this process's clients directly and publishes it for the realtime nodes.
type NATSBroker struct {
	conn     *nats.Conn
	subjects subjects
	logger   *slog.Logger
	local    LocalBroker
	origin   string
	replay   *nats.Subscription

	// failed is set when a publish failed: nodes are told when NATS is back.
	failed atomic.Bool

	mu   sync.Mutex
	seq  uint64
	ring [replayWindow]published // the last events published, by seq % replayWindow
}

// eventsLost is the type of the notice the writer publishes to every node
// after it failed to publish events; it never reaches a client.
const eventsLost = "pbchat.events-lost"

type published struct {
	seq  uint64
	room string
	data []byte
}

// ConnectNATS connects the writer to NATS. The connection retries and
// reconnects by itself forever; while NATS is away, publishes fail at once
// (never the write that produced them) and, once it is back, every node is
// told so that its clients resynchronise. There is no reconnect buffer: a
// backlog flushed after the nodes' clients had resynchronised would reach
// them stale, and reach members events of a room from before they joined it.
func ConnectNATS(config chat.NATSConfig, name string, logger *slog.Logger) (*NATSBroker, error) {
	b := &NATSBroker{subjects: subjects{config.Prefix()}, logger: logger, origin: security.RandomString(12)}
	ready := make(chan struct{})
	reportFailures := func(*nats.Conn) {
		<-ready
		b.reportFailures()
	}
	conn, err := connectNATS(config, name, logger, nats.ReconnectBufSize(-1), nats.ConnectHandler(reportFailures), nats.ReconnectHandler(func(c *nats.Conn) {
		logger.Info("pbchat: NATS reconnected", slog.String("url", c.ConnectedUrl()))
		reportFailures(c)
	}))
	if err != nil {
		close(ready)
		return nil, err
	}
	b.conn = conn
	close(ready)
	if b.replay, err = conn.Subscribe(b.subjects.replay(), b.answerReplay); err != nil {
		conn.Close()
		return nil, fmt.Errorf("pbchat: NATS subscribe %s: %w", b.subjects.replay(), err)
	}
	return b, nil
}

// connectNATS opens a connection that logs its outages; more options (a
// node's loss handlers) come from extra.
func connectNATS(config chat.NATSConfig, name string, logger *slog.Logger, extra ...nats.Option) (*nats.Conn, error) {
	options := append([]nats.Option{
		nats.Name(name),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			logger.Warn("pbchat: NATS disconnected", slog.Any("error", err))
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			logger.Info("pbchat: NATS reconnected", slog.String("url", c.ConnectedUrl()))
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			logger.Warn("pbchat: NATS", slog.String("subject", subject), slog.Any("error", err))
		}),
	}, extra...)
	conn, err := nats.Connect(config.URL, options...)
	if err != nil {
		return nil, fmt.Errorf("pbchat: connect to NATS %s: %w", config.URL, err)
	}
	return conn, nil
}

// Publish delivers the event to this process's clients and sends it once,
// to its room's subject or to the one every node receives.
func (b *NATSBroker) Publish(event chat.Event) error {
	_ = b.local.Publish(event)
	data, err := json.Marshal(event)
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	subject := b.subjects.of(event)

	// Numbering and sending under one lock: nodes see seq grow.
	b.mu.Lock()
	defer b.mu.Unlock()
	b.noticeLocked()
	data = b.stamp(event.Room, data)
	if err := b.conn.Publish(subject, data); err != nil {
		b.failed.Store(true)
		return fmt.Errorf("publish %s: %w", subject, err)
	}
	return nil
}

// reportFailures tells every node, once NATS is back, that events were not
// published while NATS was away: their clients resynchronise.
func (b *NATSBroker) reportFailures() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.noticeLocked()
}

// noticeLocked publishes the loss notice after failed publishes (b.mu
// held). Publish sends it before the next event too: whichever comes first
// after NATS is back, the nodes hear of the loss before any later event,
// so that no client's cursor moves past what it missed.
func (b *NATSBroker) noticeLocked() {
	if !b.failed.Load() {
		return
	}
	data, _ := json.Marshal(chat.Event{Type: eventsLost})
	if err := b.conn.Publish(b.subjects.users(), b.stamp("", data)); err != nil {
		b.logger.Debug("pbchat: NATS publish of a loss notice", slog.Any("error", err))
		return
	}
	b.failed.Store(false)
}

// stamp numbers an encoded event, keeps it for catch-up and returns its
// envelope (b.mu held).
func (b *NATSBroker) stamp(room string, event []byte) []byte {
	b.seq++
	// {"origin":…,"seq":…, and the event's own fields (it always has "record").
	head := fmt.Appendf(make([]byte, 0, len(event)+48), `{"origin":%q,"seq":%d,`, b.origin, b.seq)
	data := append(head, event[1:]...)
	b.ring[b.seq%replayWindow] = published{seq: b.seq, room: room, data: data}
	return data
}

// Listen sets where this process's events arrive.
func (b *NATSBroker) Listen(listener Listener) { b.local.Listen(listener) }

// Follow has nothing to do: the writer delivers every event in process.
func (b *NATSBroker) Follow(string, bool) error { return nil }

// Unfollow has nothing to do, as Follow.
func (b *NATSBroker) Unfollow(string) {}

// answerReplay answers a node's catch-up request from the last events published.
func (b *NATSBroker) answerReplay(msg *nats.Msg) {
	var req replayRequest
	if err := json.Unmarshal(msg.Data, &req); err != nil || msg.Reply == "" {
		return
	}
	data, _ := json.Marshal(b.replayFor(req))
	if err := msg.Respond(data); err != nil {
		b.logger.Warn("pbchat: NATS catch-up answer", slog.String("room", req.Room), slog.Any("error", err))
	}
}

// replayFor returns the room's events published after req.After, if the
// ring still holds them all.
func (b *NATSBroker) replayFor(req replayRequest) replayAnswer {
	b.mu.Lock()
	defer b.mu.Unlock()
	// The ring holds seq (b.seq-replayWindow, b.seq]: all of (After, b.seq] when After is inside.
	if req.Origin != b.origin || req.After > b.seq || b.seq-req.After > replayWindow {
		return replayAnswer{}
	}
	answer := replayAnswer{Complete: true}
	size := 0
	for seq := req.After + 1; seq <= b.seq; seq++ {
		if p := b.ring[seq%replayWindow]; p.room == req.Room {
			answer.Events = append(answer.Events, p.data)
			size += len(p.data)
		}
	}
	if size > maxReplayBytes {
		return replayAnswer{}
	}
	return answer
}

// Close drains the connection.
func (b *NATSBroker) Close() {
	if err := b.conn.Drain(); err != nil {
		b.conn.Close()
	}
}
