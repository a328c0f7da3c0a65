package realtime

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/pocketbase/dbx"
	validation "github.com/pocketbase/ozzo-validation/v4"
	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/subscriptions"

	"github.com/pbchat/pbchat/internal/chat"
)

// chatCollections are the collections whose stock subscriptions the hub serves.
var chatCollections = []string{
	"chat_rooms", "chat_room_users", "chat_messages", "chat_media", "chat_message_media", "chat_message_reactions",
}

// Bind makes the hub serve app's realtime clients: it authorises room
// topics, takes over stock subscriptions to the chat collections, and
// forgets clients when they disconnect.
func (h *Hub) Bind(app core.App, settings chat.Settings) {
	h.bindQuietBroadcasts(app)
	app.OnRealtimeSubscribeRequest().BindFunc(func(e *core.RealtimeSubscribeRequestEvent) error {
		return h.subscribe(e, settings)
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
}

func (h *Hub) subscribe(e *core.RealtimeSubscribeRequestEvent, settings chat.Settings) error {
	var userID string
	if e.Auth != nil && e.Auth.Collection().Name == settings.UsersCollection {
		userID = e.Auth.Id
	}

	keep := make([]string, 0, len(e.Subscriptions))
	pocketBaseServed := false
	topics := map[string][]string{}
	stock := map[string][]stockSub{}
	for _, sub := range e.Subscriptions {
		topic, options := parseSubscription(sub)
		if room, ok := strings.CutPrefix(topic, chat.RoomTopicPrefix); ok && room != "" {
			topics[room] = append(topics[room], sub)
			continue
		}
		collection, recordID := h.chatCollection(e.App, topic)
		// Superusers and subscriptions with their own filter, expand or
		// fields keep PocketBase's per-client rule evaluation.
		if collection == "" || e.HasSuperuserAuth() || options.custom() {
			keep = append(keep, sub)
			pocketBaseServed = pocketBaseServed || collection != ""
			continue
		}
		if userID != "" { // a guest could never see a chat record: nothing to deliver
			stock[collection] = append(stock[collection], stockSub{name: sub, recordID: recordID})
		}
	}

	if len(topics) > 0 {
		if userID == "" {
			return e.ForbiddenError("Room topics need a signed-in chat user.", nil)
		}
		rooms := make([]any, 0, len(topics))
		for room := range topics {
			rooms = append(rooms, room)
		}
		member, err := memberRooms(e.App, userID, rooms...)
		if err != nil {
			return err
		}
		for room := range topics {
			if !slices.Contains(member, room) {
				return e.ForbiddenError(fmt.Sprintf("You are not a member of room %s.", room),
					validation.Errors{"subscriptions": validation.NewError("not_a_member", chat.RoomTopicPrefix+room)})
			}
		}
	}
	var rooms []string
	if len(stock) > 0 {
		var err error
		if rooms, err = memberRooms(e.App, userID); err != nil {
			return err
		}
	}

	h.set(e.Client, userID, topics, stock, rooms)
	h.setPocketBaseServed(e.Client.Id(), pocketBaseServed)
	e.Subscriptions = keep
	return e.Next()
}

// chatCollection resolves "chat_messages/*" or "<collection id>/<record id>"
// to a chat collection's name and the record part.
func (h *Hub) chatCollection(app core.App, topic string) (name, recordID string) {
	prefix, recordID, ok := strings.Cut(topic, "/")
	if !ok || recordID == "" {
		if !ok {
			recordID = "*" // the deprecated bare "collection" topic
		} else {
			return "", ""
		}
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
