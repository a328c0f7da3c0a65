package chat

import "encoding/json"

// Room topic event types, the "type" of a chat/rooms/{id} event.
const (
	EventMessageCreated  = "message.created"
	EventMessageUpdated  = "message.updated"
	EventMessageDeleted  = "message.deleted"
	EventReactionCreated = "reaction.created"
	EventReactionDeleted = "reaction.deleted"
	EventMemberJoined    = "member.joined"
	EventMemberUpdated   = "member.updated"
	EventMemberLeft      = "member.left"
	EventRoomUpdated     = "room.updated"
	EventRoomDeleted     = "room.deleted"
	EventTyping          = "typing"
)

// RoomTopicPrefix starts every room topic: "chat/rooms/{id}".
const RoomTopicPrefix = "chat/rooms/"

// PresenceTopic carries presence.online and presence.offline events
// ({"type","record":{"user","online","last_online"}}) about users who share
// a room with the subscriber. They are not logged (no cursor).
const (
	PresenceTopic        = "chat/presence"
	EventPresenceOnline  = "presence.online"
	EventPresenceOffline = "presence.offline"
)

// Event is one change that a room's connected members hear about. The node
// that writes it publishes it once; every node delivers it to its own
// connected clients: as {"type","record"} on room topics and as PocketBase's
// {"action","record"} on stock subscriptions to Collection.
type Event struct {
	// Room whose connected members receive it. Empty with Users set.
	Room string `json:"room,omitempty"`
	// Users, when set, are the only recipients (a new room's members, an uploader).
	Users []string `json:"users,omitempty"`
	// Type is the room topic event type; empty for events that only stock
	// subscriptions carry (attachments, media, a room's creation).
	Type string `json:"type,omitempty"`
	// Collection, Action ("create", "update", "delete") and RecordID address
	// stock subscriptions; empty Collection: room topics only (typing).
	Collection string `json:"collection,omitempty"`
	Action     string `json:"action,omitempty"`
	RecordID   string `json:"recordId,omitempty"`
	// Record is the record as the records API returns it.
	Record json.RawMessage `json:"record"`
	// Member is the user whose membership a member.* event is about: nodes
	// update who follows the room from it.
	Member string `json:"member,omitempty"`
	// Except is a user who must not receive it (the typist).
	Except string `json:"except,omitempty"`
	// Cursor is the event log position after this event ("" for events that
	// are not logged, such as typing). Clients resume sync from it.
	Cursor string `json:"cursor,omitempty"`
}

// Publisher hands an event to the realtime fan-out after its transaction has
// committed. It must not block on delivery.
type Publisher func(Event)

// EventAuthRevoked, addressed to Users, ends those users' realtime delivery
// on every node (a changed token key, a deleted user). It is acted on by the
// realtime hubs and delivered to no client.
const EventAuthRevoked = "auth.revoked"
