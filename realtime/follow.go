package realtime

import "log/slog"

// The hub changes who follows which room under its lock and tells the
// broker afterwards, never while holding it (a NATS subscription waits for
// the server). Changes are collected as the rooms whose interest may have
// changed; reconcile then brings the broker to the hub's state at that
// moment, one caller at a time, so that calls made out of order still end
// in the right state. A room is followed before the subscribe request that
// needs it is answered, and a membership's catch-up runs before the next
// event is delivered.

// reconcile follows the rooms that have interested clients and unfollows
// those that have none.
func (h *Hub) reconcile(rooms []string) {
	h.reportPresence() // users whose first or last connection changed
	if len(rooms) == 0 {
		return
	}
	h.followMu.Lock()
	defer h.followMu.Unlock()
	for _, room := range rooms {
		want := h.interested(room)
		switch {
		case want && !h.followed[room]:
			h.followed[room] = true
			if err := h.broker.Follow(room, false); err != nil {
				h.logger.Warn("pbchat realtime: follow", slog.String("room", room), slog.Any("error", err))
			}
		case !want && h.followed[room]:
			delete(h.followed, room)
			h.broker.Unfollow(room)
		}
	}
}

// catchUp follows room for clients that just became members of it, with the
// room's events published since their membership event. When that fails
// they are disconnected, to resynchronise.
func (h *Hub) catchUp(room string, joiners []*client) {
	h.followMu.Lock()
	var err error
	if h.interested(room) {
		h.followed[room] = true
		err = h.broker.Follow(room, true)
	}
	h.followMu.Unlock()
	if err != nil {
		h.logger.Warn("pbchat realtime: catch up a room joined, disconnecting its new members", slog.String("room", room), slog.Any("error", err))
		h.discard(joiners, "room catch-up failed")
	}
}

func (h *Hub) interested(room string) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.byRoom[room]) > 0
}
