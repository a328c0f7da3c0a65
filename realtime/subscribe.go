package realtime

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/pocketbase/dbx"
	validation "github.com/pocketbase/ozzo-validation/v4"
	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/router"
	"github.com/pocketbase/pocketbase/tools/subscriptions"

	"github.com/pbchat/pbchat/internal/chat"
)

// chatCollections are the collections whose stock subscriptions the hub serves.
var chatCollections = []string{
	"chat_rooms", "chat_room_users", "chat_messages", "chat_media", "chat_message_media", "chat_message_reactions",
}

// AuthorizePath is the writer's route that realtime nodes ask to authorise
// a client's subscriptions (the node holds no database).
const AuthorizePath = "/api/chat/realtime/authorize"

// Bind makes the hub serve app's realtime clients: it authorises room
// topics, takes over stock subscriptions to the chat collections, forgets
// clients when they disconnect, and answers realtime nodes' authorisations.
func (h *Hub) Bind(app core.App, settings chat.Settings) {
	h.bindQuietBroadcasts(app)
	app.OnRealtimeSubscribeRequest().BindFunc(func(e *core.RealtimeSubscribeRequestEvent) error {
		plan, err := planSubscriptions(e.RequestEvent, settings, e.Subscriptions)
		if err != nil {
			return err
		}
		h.set(e.Client, plan.User, plan.Topics, plan.stockSubs(), plan.Rooms)
		h.setPocketBaseServed(e.Client.Id(), plan.pocketBaseServed)
		e.Subscriptions = plan.Rest
		return e.Next()
	})
	app.OnRealtimeConnectRequest().BindFunc(func(e *core.RealtimeConnectRequestEvent) error {
		if stock, isDefault := e.Client.(*subscriptions.DefaultClient); isDefault {
			client := NewClient()
			client.Set(apis.RealtimeClientIPKey, stock.Get(apis.RealtimeClientIPKey))
			e.Client = client
		}
		defer h.remove(e.Client.Id())
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
			plan, err := planSubscriptions(e, settings, body.Subscriptions)
			if err != nil {
				return err
			}
			return e.JSON(http.StatusOK, plan)
		}).Unbind(apis.DefaultRateLimitMiddlewareId) // every node's requests come from its one address
		return se.Next()
	})
}

// Plan is how a client's subscriptions are served: room topics and chat
// collections by pbchat, the Rest by PocketBase.
type Plan struct {
	User   string                `json:"user"`
	Topics map[string][]string   `json:"topics"` // room id → subscription names
	Stock  map[string][]StockSub `json:"stock"`  // collection → subscriptions
	Rooms  []string              `json:"rooms"`  // the user's rooms, when Stock is set
	Rest   []string              `json:"rest"`

	pocketBaseServed bool // Rest holds a chat collection subscription
}

// StockSub is a stock subscription to a chat collection: its name as the
// client sent it (the SSE event name) and "*" or a record id.
type StockSub struct {
	Name     string `json:"name"`
	RecordID string `json:"recordId"`
}

func (p Plan) stockSubs() map[string][]stockSub {
	out := make(map[string][]stockSub, len(p.Stock))
	for collection, subs := range p.Stock {
		for _, s := range subs {
			out[collection] = append(out[collection], stockSub{name: s.Name, recordID: s.RecordID})
		}
	}
	return out
}

// planSubscriptions sorts a subscribe request: room topics need membership
// (403 otherwise), chat collections without filter/expand/fields options are
// served by the hub (only to chat users), everything else stays PocketBase's.
func planSubscriptions(e *core.RequestEvent, settings chat.Settings, subs []string) (Plan, error) {
	plan := Plan{Topics: map[string][]string{}, Stock: map[string][]StockSub{}, Rest: make([]string, 0, len(subs))}
	if e.Auth != nil && e.Auth.Collection().Name == settings.UsersCollection {
		plan.User = e.Auth.Id
	}
	for _, sub := range subs {
		topic, options := parseSubscription(sub)
		if room, ok := strings.CutPrefix(topic, chat.RoomTopicPrefix); ok && room != "" {
			plan.Topics[room] = append(plan.Topics[room], sub)
			continue
		}
		collection, recordID := chatCollection(e.App, topic)
		if collection == "" || e.HasSuperuserAuth() || options.custom() {
			plan.Rest = append(plan.Rest, sub)
			plan.pocketBaseServed = plan.pocketBaseServed || collection != ""
			continue
		}
		if plan.User != "" { // a guest could never see a chat record: nothing to deliver
			plan.Stock[collection] = append(plan.Stock[collection], StockSub{Name: sub, RecordID: recordID})
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
	if slices.Contains(chatCollections, prefix) {
		return prefix, recordID
	}
	if c, err := app.FindCachedCollectionByNameOrId(prefix); err == nil && slices.Contains(chatCollections, c.Name) {
		return c.Name, recordID
	}
	return "", ""
}

// memberRooms returns which of rooms (all when none given) the user is a member of.
func memberRooms(app core.App, userID string, rooms ...any) ([]string, error) {
	q := app.DB().Select("room").From("chat_room_users").Where(dbx.HashExp{"user": userID})
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

// custom reports options that change what a stock subscription returns;
// malformed ones are left to PocketBase, which ignores them its own way.
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
