package realtime

// A subscription's plan is computed from the database (on the writer, or by
// the writer for a node) and installed in the hub a little later. A
// membership change whose event reaches the hub in between must not be
// undone by the install: the hub numbers the membership changes it sees and
// the install applies those that came after the plan's ticket was taken
// (a removal takes the room out, a join puts it in for stock
// subscriptions). A change whose event comes later finds the subscription
// installed and is applied as usual; one that came before the ticket had
// committed before the plan read the database.

// membershipLogSize is how many changes an install can look back over; a
// plan that took longer is computed again.
const membershipLogSize = 1024

// ticket is the position in the hub's membership log when a plan's computation starts.
type ticket uint64

// membership is a member.joined or member.left (user and room), a
// room.deleted (room only) or a revocation (user only).
type membership struct {
	user, room string
	joined     bool
}

type membershipLog struct {
	seq     uint64
	entries [membershipLogSize]membership // by seq % membershipLogSize
}

func (l *membershipLog) add(m membership) {
	l.seq++
	l.entries[l.seq%membershipLogSize] = m
}

// since tells what the changes after t mean for a plan of user: its
// authority ended (revoked), or rooms it gained (true) or lost (false).
// complete is false when the log no longer reaches back to t.
func (l *membershipLog) since(t ticket, user string) (revoked bool, rooms map[string]bool, complete bool) {
	if l.seq-uint64(t) > membershipLogSize {
		return false, nil, false
	}
	for seq := uint64(t) + 1; seq <= l.seq; seq++ {
		m := l.entries[seq%membershipLogSize]
		switch {
		case user == "":
			// A guest follows no room.
		case m.room == "" && m.user == user:
			revoked = true
		case m.room != "" && (m.user == user || m.user == ""):
			if rooms == nil {
				rooms = map[string]bool{}
			}
			rooms[m.room] = m.joined
		}
	}
	return revoked, rooms, true
}
