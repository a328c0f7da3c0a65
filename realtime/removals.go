package realtime

// A subscription's plan is computed from the database (on the writer, or by
// the writer for a node) and installed in the hub a little later. A removal
// whose event reaches the hub in between must not be undone by the install:
// the hub numbers every removal it sees and the install leaves out what was
// removed after the plan's ticket was taken. A removal whose event comes
// later finds the subscription installed and ends it as usual; one that came
// before the ticket had committed before the plan read the database.

// removalLogSize is how many removals an install can look back over; a plan
// that took longer is computed again.
const removalLogSize = 1024

// ticket is the position in the hub's removal log when a plan's computation starts.
type ticket uint64

// removal is a member.left (user and room), a room.deleted (room only) or a
// revocation (user only).
type removal struct {
	user, room string
}

type removalLog struct {
	seq     uint64
	entries [removalLogSize]removal // by seq % removalLogSize
}

func (l *removalLog) add(user, room string) {
	l.seq++
	l.entries[l.seq%removalLogSize] = removal{user: user, room: room}
}

// since tells what the removals after t mean for a plan of user: its
// authority ended (revoked), or rooms it must leave out. complete is false
// when the log no longer reaches back to t.
func (l *removalLog) since(t ticket, user string) (revoked bool, rooms map[string]bool, complete bool) {
	if l.seq-uint64(t) > removalLogSize {
		return false, nil, false
	}
	for seq := uint64(t) + 1; seq <= l.seq; seq++ {
		r := l.entries[seq%removalLogSize]
		switch {
		case user == "":
			// A guest follows no room.
		case r.room == "" && r.user == user:
			revoked = true
		case r.room != "" && (r.user == user || r.user == ""):
			if rooms == nil {
				rooms = map[string]bool{}
			}
			rooms[r.room] = true
		}
	}
	return revoked, rooms, true
}
