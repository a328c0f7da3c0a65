package realtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/pocketbase/dbx"
	validation "github.com/pocketbase/ozzo-validation/v4"
	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/hook"
	"github.com/pocketbase/pocketbase/tools/router"
	"github.com/pocketbase/pocketbase/tools/subscriptions"

	"github.com/pbchat/pbchat/internal/chat"
)

// AuthorizePath is the writer's route that realtime nodes ask to authorise
// a client's subscriptions (the node holds no database).
const AuthorizePath = "/api/chat/realtime/authorize"

// Bind makes the hub serve app's realtime clients: it authorises room
// topics, takes over stock subscriptions to the chat collections, forgets
// clients when they disconnect, and answers realtime nodes' authorisations.
func (h *Hub) Bind(app core.App, settings chat.Settings) {
	h.bindQuietBroadcasts(app)
	h.bindRevocations(app, settings)
	app.OnRealtimeSubscribeRequest().BindFunc(func(e *core.RealtimeSubscribeRequestEvent) error {
		subs, since := e.Subscriptions, h.ticket()
		plan, err := planSubscriptions(e.RequestEvent, settings, subs)
		if err != nil {
			return err
		}
		e.Subscriptions = plan.Rest
		if plan.pocketBaseServed {
			// Before PocketBase subscribes the client: no broadcast may skip it.
			h.setPocketBaseServed(e.Client, true)
		}
		// PocketBase answers here (the answer leaves when this hook returns).
		if err := e.Next(); err != nil {
			return err
		}
		h.setPocketBaseServed(e.Client, plan.pocketBaseServed)
		h.installOnWriter(e, settings, subs, plan, since)
		return nil
	})
	app.OnRealtimeConnectRequest().BindFunc(func(e *core.RealtimeConnectRequestEvent) error {
		if stock, isDefault := e.Client.(*subscriptions.DefaultClient); isDefault {
			client := NewClient()
			client.Set(apis.RealtimeClientIPKey, stock.Get(apis.RealtimeClientIPKey))
			e.Client = client
		}
		client := e.Client
		err := e.Next()
		if qc, ok := client.(*quietClient); !ok || qc.stream == nil {
			// PocketBase discards the client when its connection ends, before this runs.
			h.remove(client)
		}
		return err
	})
	app.OnRealtimeConnectRequest().Bind(&hook.Handler[*core.RealtimeConnectRequestEvent]{
		Id: "pbchatRealtimeStream",
		// Last: every other handler has run, and set the timeouts.
		Priority: math.MaxInt,
		Func:     h.serveStream,
	})
	app.OnTerminate().BindFunc(func(e *core.TerminateEvent) error {
		h.streams.closeAll()
		return e.Next()
	})
	app.OnServe().BindFunc(func(se *core.ServeEvent) error {
		se.Router.POST(AuthorizePath, func(e *core.RequestEvent) error {
			var body struct {
				Subscriptions []string `json:"subscriptions"`
			}
			if err := e.BindBody(&body); err != nil {
				return e.BadRequestError("Invalid body.", err)
			}
			if err := refuseNodeOptions(e.App, body.Subscriptions); err != nil {
				return err // a node has no database to evaluate them with
			}
			plan, err := planSubscriptions(e, settings, body.Subscriptions)
			if err != nil {
				return err
			}
			return e.JSON(http.StatusOK, plan)
		}).Unbind(apis.DefaultRateLimitMiddlewareId) // every node's requests come from its one address
		return se.Next()
	})
}

// installOnWriter installs a plan once PocketBase has accepted the request.
// In the rare case that more membership changes than the hub remembers came
// while the plan was computed it is computed again; when that fails (a room
// topic the user lost meanwhile) the connection is closed: the SDK
// reconnects and resubscribes, and gets the refusal.
func (h *Hub) installOnWriter(e *core.RealtimeSubscribeRequestEvent, settings chat.Settings, subs []string, plan Plan, since ticket) {
	for attempt := 0; ; attempt++ {
		err := h.install(e.Client, plan, since)
		if !errors.Is(err, errPlanStale) {
			return // installed, or the client is gone: nothing left to serve
		}
		since = h.ticket()
		if plan, err = planSubscriptions(e.RequestEvent, settings, subs); err != nil || attempt == 2 {
			h.logger.Warn("pbchat realtime: subscriptions changed while planned, disconnecting", slog.String("clientId", e.Client.Id()), slog.Any("error", err))
			e.Client.Discard()
			return
		}
	}
}

// Plan is how a client's subscriptions are served: room topics and chat
// collections by pbchat, the Rest by PocketBase.
type Plan struct {
	User   string                `json:"user"`
	Topics map[string][]string   `json:"topics"` // room id → subscription names
	Stock  map[string][]StockSub `json:"stock"`  // collection → subscriptions
	Rooms  []string              `json:"rooms"`  // the user's rooms, when Stock is set
	Rest   []string              `json:"rest"`
	// Presence: chat/presence subscription names (signed-in chat users only).
	Presence []string `json:"presence,omitempty"`

	pocketBaseServed bool // Rest holds a chat collection subscription
}

// StockSub is a stock subscription to a chat collection: its name as the
// client sent it (the SSE event name) and "*" or a record id.
type StockSub struct {
	Name     string `json:"name"`
	RecordID string `json:"recordId"`

	options *subOptions // writer only: nodes refuse options
}

func (p Plan) stockSubs() map[string][]stockSub {
	out := make(map[string][]stockSub, len(p.Stock))
	for collection, subs := range p.Stock {
		for _, s := range subs {
			out[collection] = append(out[collection], stockSub{name: s.Name, recordID: s.RecordID, options: s.options})
		}
	}
	return out
}

// planSubscriptions sorts a subscribe request: room topics need membership
// (403 otherwise), chat collections are served by the hub (only to chat
// users, options included: options.go), superusers' and everything else
// stays PocketBase's.
func planSubscriptions(e *core.RequestEvent, settings chat.Settings, subs []string) (Plan, error) {
	plan := Plan{Topics: map[string][]string{}, Stock: map[string][]StockSub{}, Rest: make([]string, 0, len(subs))}
	if e.Auth != nil && e.Auth.Collection().Name == settings.UsersCollection {
		plan.User = e.Auth.Id
	}
	for _, sub := range subs {
		topic, options := parseSubscription(sub)
		if topic == chat.PresenceTopic {
			if plan.User == "" {
				return plan, router.NewForbiddenError("Presence needs a signed-in chat user.",
					validation.Errors{"subscriptions": validation.NewError("not_a_chat_user", chat.PresenceTopic)})
			}
			plan.Presence = append(plan.Presence, sub)
			continue
		}
		if room, ok := strings.CutPrefix(topic, chat.RoomTopicPrefix); ok && room != "" {
			plan.Topics[room] = append(plan.Topics[room], sub)
			continue
		}
		collection, recordID := chatCollection(e.App, topic)
		if collection == "" || e.HasSuperuserAuth() {
			plan.Rest = append(plan.Rest, sub)
			plan.pocketBaseServed = plan.pocketBaseServed || collection != ""
			continue
		}
		if plan.User != "" { // a guest could never see a chat record, whatever the options: nothing to deliver
			stock := StockSub{Name: sub, RecordID: recordID}
			if options.custom() {
				var err error
				if stock.options, err = stockOptions(e, collection, sub); err != nil {
					return plan, err
				}
			}
			plan.Stock[collection] = append(plan.Stock[collection], stock)
		}
	}

	if len(plan.Topics) > 0 {
		if plan.User == "" {
			return plan, router.NewForbiddenError("Room topics need a signed-in chat user.", nil)
		}
		rooms := make([]any, 0, len(plan.Topics))
		for room := range plan.Topics {
			rooms = append(rooms, room)
		}
		member, err := memberRooms(e.App, plan.User, rooms...)
		if err != nil {
			return plan, err
		}
		for room := range plan.Topics {
			if !slices.Contains(member, room) {
				return plan, router.NewForbiddenError(fmt.Sprintf("You are not a member of room %s.", room),
					validation.Errors{"subscriptions": validation.NewError("not_a_member", chat.RoomTopicPrefix+room)})
			}
		}
	}
	if len(plan.Stock) > 0 {
		var err error
		if plan.Rooms, err = memberRooms(e.App, plan.User); err != nil {
			return plan, err
		}
	}
	return plan, nil
}

// chatCollection resolves "chat_messages/*" or "<collection id>/<record id>"
// to a chat collection's name and the record part.
func chatCollection(app core.App, topic string) (name, recordID string) {
	prefix, recordID, ok := strings.Cut(topic, "/")
	if !ok {
		recordID = "*" // the deprecated bare "collection" topic
	} else if recordID == "" {
		return "", ""
	}
	if chat.IsCollection(prefix) {
		return prefix, recordID
	}
	if c, err := app.FindCachedCollectionByNameOrId(prefix); err == nil && chat.IsCollection(c.Name) {
		return c.Name, recordID
	}
	return "", ""
}

// memberRooms returns which of rooms (all when none given) the user is a member of.
func memberRooms(app core.App, userID string, rooms ...any) ([]string, error) {
	q := app.DB().Select("room").From(chat.CollectionRoomUsers).Where(dbx.HashExp{"user": userID})
	if len(rooms) > 0 {
		q.AndWhere(dbx.In("room", rooms...))
	}
	var out []string
	if err := q.Column(&out); err != nil {
		return nil, fmt.Errorf("rooms of %s: %w", userID, err)
	}
	return out, nil
}

type subscriptionOptions struct {
	Query     map[string]any `json:"query"`
	Headers   map[string]any `json:"headers"`
	malformed bool
}

// custom reports options that may change what a stock subscription returns
// (malformed ones too: stockOptions then parses them as PocketBase does).
func (o subscriptionOptions) custom() bool {
	if o.malformed {
		return true
	}
	for _, key := range []string{"filter", "expand", "fields"} {
		if v, ok := o.Query[key]; ok && fmt.Sprint(v) != "" {
			return true
		}
	}
	return false
}

// parseSubscription splits "topic?options={...}" as PocketBase's client does.
func parseSubscription(sub string) (string, subscriptionOptions) {
	var options subscriptionOptions
	topic, rawQuery, _ := strings.Cut(sub, "?")
	if values, err := url.ParseQuery(rawQuery); err == nil {
		if raw := values.Get("options"); raw != "" {
			options.malformed = json.Unmarshal([]byte(raw), &options) != nil
		}
	}
	return topic, options
}
