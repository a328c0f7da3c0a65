package realtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/pocketbase/pocketbase/tools/subscriptions"
)

// NodeBroker is what a realtime node needs of the bus: the hub's Broker, a
// way to reach the node that holds a client, and the connection's state.
// *NATSNodeBroker is the one pbchat uses.
type NodeBroker interface {
	Broker
	// Ask sends a request to whichever node answers it (see Answer) and
	// returns the reply.
	Ask(request []byte, timeout time.Duration) ([]byte, error)
	// Answer serves Ask: handle answers the requests that are this node's
	// (ok) and ignores the others. stop ends it.
	Answer(handle func(request []byte) (reply []byte, ok bool)) (stop func(), err error)
	// State reports whether the bus is connected, and its state in a word.
	State() (connected bool, state string)
}

// NodeConfig configures a realtime node: a process that holds clients'
// realtime connections and no database.
type NodeConfig struct {
	// Writer is the base URL of the pbchat app that owns the database
	// (http://127.0.0.1:8090): it authorises every subscription.
	Writer string
	// Broker joins the node to the writer (ConnectNATSNode).
	Broker NodeBroker
	// IdleTimeout closes a connection that got nothing for this long (the
	// SDKs reconnect by themselves). Default 5 minutes, as PocketBase.
	IdleTimeout time.Duration
	// MaxLifetime closes every connection at this age, as PocketBase does,
	// so that none holds resources (or a subscription) for ever. Default 30 minutes.
	MaxLifetime time.Duration
	Logger      *slog.Logger
	HTTPClient  *http.Client
}

// forwardTimeout bounds the wait for the node holding a client.
const forwardTimeout = 2 * time.Second

// Node serves PocketBase's realtime protocol (GET and POST /api/realtime)
// for room topics and the chat collections, with events arriving over NATS.
type Node struct {
	config      NodeConfig
	hub         *Hub
	clients     *subscriptions.Broker
	stopAnswers func()
	presence    *nodePresence // reports who is online here to the writer (NATS only)
}

// subscribeRequest is PocketBase's POST /api/realtime body, plus the
// Authorization header when a node forwards it to the node holding the client.
type subscribeRequest struct {
	ClientID      string   `json:"clientId"`
	Subscriptions []string `json:"subscriptions"`
	Authorization string   `json:"authorization,omitempty"`
}

type forwardedAnswer struct {
	Status int             `json:"status"`
	Body   json.RawMessage `json:"body,omitempty"`
}

// NewNode starts a realtime node on config.Broker.
func NewNode(config NodeConfig) (*Node, error) {
	if config.Broker == nil {
		return nil, errors.New("pbchat realtime node: no broker")
	}
	if config.IdleTimeout == 0 {
		config.IdleTimeout = 5 * time.Minute
	}
	if config.MaxLifetime == 0 {
		config.MaxLifetime = 30 * time.Minute
	}
	if config.Logger == nil {
		config.Logger = slog.Default()
	}
	if config.HTTPClient == nil {
		config.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	n := &Node{config: config, clients: subscriptions.NewBroker()}
	n.hub = NewHub(config.Broker, config.Logger)
	if b, ok := config.Broker.(*NATSNodeBroker); ok {
		n.presence = b.presenceSink()
		n.hub.ReportPresence(n.presence)
	}

	// A subscribe request may reach any node behind a load balancer: the
	// node that does not hold the client asks the others, and the one that
	// does answers.
	stop, err := config.Broker.Answer(func(request []byte) ([]byte, bool) {
		var req subscribeRequest
		if json.Unmarshal(request, &req) != nil {
			return nil, false
		}
		if _, err := n.clients.ClientById(req.ClientID); err != nil {
			return nil, false // not ours
		}
		status, body := n.subscribe(req)
		answer, _ := json.Marshal(forwardedAnswer{Status: status, Body: body})
		return answer, true
	})
	if err != nil {
		return nil, fmt.Errorf("pbchat realtime node: %w", err)
	}
	n.stopAnswers = stop
	return n, nil
}

// Close stops answering forwarded requests and tells the writer that this
// node's users are gone from it.
func (n *Node) Close() {
	n.stopAnswers()
	n.hub.streams.closeAll()
	if n.presence != nil {
		n.presence.close()
	}
}

// Handler serves /api/realtime and /api/health.
func (n *Node) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/realtime", n.connect)
	mux.HandleFunc("POST /api/realtime", n.postSubscriptions)
	mux.HandleFunc("GET /api/health", n.health)
	return cors(mux)
}

// health answers 200 while the node receives events, 503 while NATS is
// away (its clients' subscriptions deliver nothing meanwhile); data.nats is
// the connection's state ("connected", "reconnecting", …).
func (n *Node) health(w http.ResponseWriter, _ *http.Request) {
	connected, state := n.config.Broker.State()
	data := map[string]any{"nats": state}
	if !connected {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"code": http.StatusServiceUnavailable, "message": "Realtime node is not connected to NATS.", "data": data})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"code": http.StatusOK, "message": "Realtime node is healthy.", "data": data})
}

func (n *Node) connect(w http.ResponseWriter, r *http.Request) {
	if rc := http.NewResponseController(w); rc.SetWriteDeadline(time.Time{}) != nil {
		n.config.Logger.Debug("pbchat realtime node: no write deadline control")
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")

	client := NewClient()
	qc := client.(*quietClient)
	err := n.hub.streams.start(w, r, qc, n.config.IdleTimeout, n.config.MaxLifetime, nil,
		func() { n.clients.Register(client) },
		func() {
			n.clients.Unregister(client.Id())
			n.hub.remove(client)
		})
	if !errors.Is(err, errNotHijackable) {
		if err != nil {
			n.config.Logger.Debug("pbchat realtime node: PB_CONNECT", slog.Any("error", err))
		}
		return // a stream (stream.go), or a connection that already ended
	}
	n.clients.Register(client)
	defer func() {
		// Unregister discards the client first: a subscribe request still in
		// flight can no longer register it with the hub.
		n.clients.Unregister(client.Id())
		n.hub.remove(client)
	}()

	flusher, _ := w.(http.Flusher)
	write := func(msg subscriptions.Message) error {
		if err := msg.WriteSSE(w, client.Id()); err != nil {
			return err
		}
		if flusher != nil {
			flusher.Flush()
		}
		return nil
	}
	if write(subscriptions.Message{Name: "PB_CONNECT", Data: []byte(`{"clientId":"` + client.Id() + `"}`)}) != nil {
		return
	}
	idle := time.NewTimer(n.config.IdleTimeout)
	defer idle.Stop()
	lifetime := time.NewTimer(n.config.MaxLifetime)
	defer lifetime.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-idle.C:
			return
		case <-lifetime.C:
			return
		case msg, ok := <-client.Channel():
			if !ok || write(msg) != nil {
				return // discarded (too slow, revoked, events lost) or gone
			}
			idle.Reset(n.config.IdleTimeout)
		}
	}
}

func (n *Node) postSubscriptions(w http.ResponseWriter, r *http.Request) {
	var req subscribeRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil || req.ClientID == "" {
		writeError(w, http.StatusBadRequest, "Invalid realtime subscribe request.")
		return
	}
	req.Authorization = r.Header.Get("Authorization")

	if _, err := n.clients.ClientById(req.ClientID); err != nil {
		n.forwardSubscribe(w, req)
		return
	}
	status, body := n.subscribe(req)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// forwardSubscribe hands a request for a client held elsewhere to its node.
func (n *Node) forwardSubscribe(w http.ResponseWriter, req subscribeRequest) {
	data, _ := json.Marshal(req)
	reply, err := n.config.Broker.Ask(data, forwardTimeout)
	if err != nil {
		writeError(w, http.StatusNotFound, "Missing or invalid client id.")
		return
	}
	var answer forwardedAnswer
	if json.Unmarshal(reply, &answer) != nil {
		writeError(w, http.StatusBadGateway, "Invalid answer from the realtime node holding the client.")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(answer.Status)
	_, _ = w.Write(answer.Body)
}

// subscribe asks the writer to authorise the subscriptions and applies its
// plan. Answers as PocketBase does: 204, or the writer's error as it was.
func (n *Node) subscribe(req subscribeRequest) (int, []byte) {
	client, err := n.clients.ClientById(req.ClientID)
	if err != nil {
		return http.StatusNotFound, errorBody(http.StatusNotFound, "Missing or invalid client id.")
	}
	for attempt := 0; ; attempt++ {
		// Removals this node hears of from here on are checked at install:
		// the writer reads the memberships after this point.
		since := n.hub.ticket()
		plan, status, body := n.authorize(req)
		if status != http.StatusOK {
			return status, body
		}
		if rest := writerOnly(plan.Rest); len(rest) > 0 {
			return refuseWriterOnly(rest)
		}
		// As PocketBase: a connection may go from guest to user, never change user.
		if previous, _ := client.Get("pbchat.user").(string); previous != "" && previous != plan.User {
			return http.StatusForbidden, errorBody(http.StatusForbidden, "The current and the previous request authorization don't match.")
		}
		client.Set("pbchat.user", plan.User)
		switch err := n.hub.install(client, plan, since); {
		case err == nil:
			// Installed and followed: what is published from now on arrives.
			return http.StatusNoContent, nil
		case errors.Is(err, errClientGone):
			return http.StatusNotFound, errorBody(http.StatusNotFound, "Missing or invalid client id.")
		case attempt == 2:
			return http.StatusServiceUnavailable, errorBody(http.StatusServiceUnavailable, "Memberships kept changing; try again.")
		}
	}
}

func (n *Node) authorize(req subscribeRequest) (Plan, int, []byte) {
	var plan Plan
	body, _ := json.Marshal(map[string]any{"subscriptions": req.Subscriptions})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	httpReq, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(n.config.Writer, "/")+AuthorizePath, bytes.NewReader(body))
	if err != nil {
		return plan, http.StatusInternalServerError, errorBody(http.StatusInternalServerError, "Invalid writer URL.")
	}
	httpReq.Header.Set("Content-Type", "application/json")
	if req.Authorization != "" {
		httpReq.Header.Set("Authorization", req.Authorization)
	}
	res, err := n.config.HTTPClient.Do(httpReq)
	if err != nil {
		n.config.Logger.Warn("pbchat realtime node: writer unreachable", slog.Any("error", err))
		return plan, http.StatusServiceUnavailable, errorBody(http.StatusServiceUnavailable, "The chat server cannot authorise subscriptions right now.")
	}
	defer res.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return plan, http.StatusBadGateway, errorBody(http.StatusBadGateway, "Incomplete answer from the chat server.")
	}
	if res.StatusCode != http.StatusOK {
		return plan, res.StatusCode, answer
	}
	if err := json.Unmarshal(answer, &plan); err != nil {
		return plan, http.StatusBadGateway, errorBody(http.StatusBadGateway, "Invalid answer from the chat server.")
	}
	return plan, http.StatusOK, nil
}

// writerOnly is what of the plan's Rest a node cannot serve: all of it but
// PB_CONNECT, which the SDKs list as a subscription when an app listens for
// (re)connects, and which a node sends on every connection as PocketBase does.
func writerOnly(rest []string) []string {
	var out []string
	for _, sub := range rest {
		if sub != "PB_CONNECT" {
			out = append(out, sub)
		}
	}
	return out
}

// refuseWriterOnly answers subscriptions only PocketBase can serve (other
// collections, a superuser's): a node serves room topics and the chat
// collections, so they need the writer's own /api/realtime. Refused as a
// whole, as PocketBase refuses a request, rather than accepted and never
// delivered.
func refuseWriterOnly(subs []string) (int, []byte) {
	body, _ := json.Marshal(map[string]any{
		"status":  http.StatusBadRequest,
		"message": "Subscriptions to other collections, and a superuser's, need the writer's /api/realtime.",
		"data": map[string]any{"subscriptions": map[string]string{
			"code":    "validation_needs_writer",
			"message": fmt.Sprintf("%q: only the writer's /api/realtime serves it", subs[0]),
		}},
	})
	return http.StatusBadRequest, body
}

func errorBody(status int, message string) []byte {
	body, _ := json.Marshal(map[string]any{"status": status, "message": message, "data": map[string]any{}})
	return body
}

func writeError(w http.ResponseWriter, status int, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(errorBody(status, message))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// cors lets browser clients on another origin connect, as PocketBase's default does.
func cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		if r.Method == http.MethodOptions {
			w.Header().Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
			w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}
