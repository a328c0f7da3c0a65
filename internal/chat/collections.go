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
