package chat

// The chat collections' names, fixed by the spec.
const (
	CollectionRooms            = "chat_rooms"
	CollectionRoomUsers        = "chat_room_users"
	CollectionMessages         = "chat_messages"
	CollectionMedia            = "chat_media"
	CollectionMessageMedia     = "chat_message_media"
	CollectionMessageReactions = "chat_message_reactions"
)

// Collections are the chat collections, in creation order (an array: callers
// get a copy).
var Collections = [...]string{
	CollectionRooms, CollectionRoomUsers, CollectionMessages,
	CollectionMedia, CollectionMessageMedia, CollectionMessageReactions,
}

// IsCollection reports whether name is one of the chat collections.
func IsCollection(name string) bool {
	switch name {
	case CollectionRooms, CollectionRoomUsers, CollectionMessages,
		CollectionMedia, CollectionMessageMedia, CollectionMessageReactions:
		return true
	}
	return false
}

// The moderation collections. They are not in Collections: their changes
// are no room events (nothing in the event log, sync or pbchat's realtime
// hub); PocketBase's own realtime serves them under their API rules. The
// query guard treats them as chat collections all the same (IsGuarded).
const (
	CollectionRoomBans       = "chat_room_bans"
	CollectionMessageReports = "chat_message_reports"
)

// IsGuarded reports whether filters and sorts must not reach name's rows
// other than as the query guard allows: the chat collections and the
// moderation collections.
func IsGuarded(name string) bool {
	return IsCollection(name) || name == CollectionRoomBans || name == CollectionMessageReports
}
