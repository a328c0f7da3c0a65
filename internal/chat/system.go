package chat

// System message kinds, the values of chat_messages.system. A message with
// an empty system is a member's; the others are written by the server in
// the transaction of the change they tell about, and nobody edits them.
const (
	SystemMemberJoined  = "member_joined"  // the user added themself (joined a public room)
	SystemMemberLeft    = "member_left"    // the user removed themself
	SystemMemberAdded   = "member_added"   // someone else added the user
	SystemMemberRemoved = "member_removed" // someone else removed the user
	SystemRoomRenamed   = "room_renamed"   // the room's name changed
)

// SystemKinds lists the system message kinds in a stable order.
var SystemKinds = []string{SystemMemberJoined, SystemMemberLeft, SystemMemberAdded, SystemMemberRemoved, SystemRoomRenamed}

// MembershipKind tells which system message a membership change writes:
// added says whether it was created (else deleted), by is who did it ("" when
// unknown: a superuser or Go code), user whose membership it is.
func MembershipKind(added bool, user, by string) string {
	self := by == user
	switch {
	case added && self:
		return SystemMemberJoined
	case added:
		return SystemMemberAdded
	case self:
		return SystemMemberLeft
	default:
		return SystemMemberRemoved
	}
}
