package chat

import (
	"fmt"
	"strings"
)

// MaxMentions is how many users one message may mention.
const MaxMentions = 50

// MessageRef is what the reply and thread rules need of a message: where it
// is and whether it is itself a thread reply. A nil *MessageRef is a message
// that does not exist.
type MessageRef struct {
	ID     string
	Room   string
	Thread string
}

// CheckReplyTo decides whether a message of room may reply to parent: the
// parent must exist and be in the same room.
func CheckReplyTo(room string, parent *MessageRef) error {
	if parent == nil {
		return fmt.Errorf("reply_to must be an existing message of the room")
	}
	if parent.Room != room {
		return fmt.Errorf("reply_to must be a message of the same room")
	}
	return nil
}

// CheckThreadRoot decides whether a message of room may be a reply in the
// thread of root: the root must exist, be in the same room and be a root
// itself (threads do not nest).
func CheckThreadRoot(room string, root *MessageRef) error {
	if root == nil {
		return fmt.Errorf("thread must be an existing message of the room")
	}
	if root.Room != room {
		return fmt.Errorf("thread must be a message of the same room")
	}
	if root.Thread != "" {
		return fmt.Errorf("thread must be a root message (the message %s is a reply in the thread of %s)", root.ID, root.Thread)
	}
	return nil
}

// CheckMentions decides whether a message may mention added, the users it
// mentions that it did not before: each must be a member of the room
// (isMember) and there may be at most MaxMentions in all (total).
func CheckMentions(total int, added []string, isMember func(user string) bool) error {
	if total > MaxMentions {
		return fmt.Errorf("mentions may name at most %d users, got %d", MaxMentions, total)
	}
	var outsiders []string
	for _, user := range added {
		if !isMember(user) {
			outsiders = append(outsiders, user)
		}
	}
	if len(outsiders) > 0 {
		return fmt.Errorf("mentions must be members of the room (not: %s)", strings.Join(outsiders, ", "))
	}
	return nil
}

// AddedMentions is the users of after that are not in before, in order.
func AddedMentions(before, after []string) []string {
	had := make(map[string]bool, len(before))
	for _, user := range before {
		had[user] = true
	}
	var added []string
	for _, user := range after {
		if !had[user] {
			added = append(added, user)
			had[user] = true
		}
	}
	return added
}
