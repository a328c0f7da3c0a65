package e2e

// The chaos test's verdicts: every client's state against the database, and
// every event a client held against the memberships of the event log.

import (
	"database/sql"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/pbchat/pbchat/migrations"
)

// chaosTruth is the database at the end.
type chaosTruth struct {
	rooms map[string]*chaosRoom // as a member sees it (ver unused)
	of    map[string][]string   // user → rooms
	log   map[int64]chaosLogRow // by seq
	// intervals: "room|user" → [joined seq, left seq (0: still in)]
	intervals map[string][][2]int64
	msgRoom   map[string]string // every message ever logged → room
	events    int
}

type chaosLogRow struct {
	room, typ, collection, recordID, member string
}

func chaosReadTruth(dir string) (*chaosTruth, error) {
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "data.db")+"?mode=ro")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	truth := &chaosTruth{rooms: map[string]*chaosRoom{}, of: map[string][]string{}, log: map[int64]chaosLogRow{},
		intervals: map[string][][2]int64{}, msgRoom: map[string]string{}}
	each := func(query string, scan func(rows *sql.Rows) error) error {
		rows, err := db.Query(query)
		if err != nil {
			return fmt.Errorf("%s: %w", query, err)
		}
		defer rows.Close()
		for rows.Next() {
			if err := scan(rows); err != nil {
				return err
			}
		}
		return rows.Err()
	}
	room := func(id string) *chaosRoom {
		if truth.rooms[id] == nil {
			truth.rooms[id] = newChaosRoom()
		}
		return truth.rooms[id]
	}
	err = each("SELECT id, name FROM chat_rooms", func(rows *sql.Rows) error {
		var id, name string
		err := rows.Scan(&id, &name)
		room(id).name = name
		return err
	})
	if err == nil {
		err = each("SELECT id, room, user FROM chat_room_users", func(rows *sql.Rows) error {
			var id, r, user string
			err := rows.Scan(&id, &r, &user)
			room(r).members[id] = user
			truth.of[user] = append(truth.of[user], r)
			return err
		})
	}
	if err == nil {
		err = each("SELECT id, room, text FROM chat_messages", func(rows *sql.Rows) error {
			var id, r, text string
			err := rows.Scan(&id, &r, &text)
			room(r).messages[id] = text
			return err
		})
	}
	if err == nil {
		err = each("SELECT x.id, m.room, x.message, x.user, x.reaction FROM chat_message_reactions x JOIN chat_messages m ON m.id = x.message", func(rows *sql.Rows) error {
			var id, r, message, user, reaction string
			err := rows.Scan(&id, &r, &message, &user, &reaction)
			room(r).reactions[id] = message + "|" + user + "|" + reaction
			return err
		})
	}
	if err == nil {
		open := map[string]int64{}
		err = each("SELECT seq, room, type, collection, record_id, member FROM "+migrations.EventsTable+" ORDER BY seq", func(rows *sql.Rows) error {
			var seq int64
			var row chaosLogRow
			if err := rows.Scan(&seq, &row.room, &row.typ, &row.collection, &row.recordID, &row.member); err != nil {
				return err
			}
			truth.log[seq] = row
			truth.events++
			key := row.room + "|" + row.member
			switch row.typ {
			case "member.joined":
				open[key] = seq
			case "member.left":
				truth.intervals[key] = append(truth.intervals[key], [2]int64{open[key], seq})
				delete(open, key)
			case "message.created":
				truth.msgRoom[row.recordID] = row.room
			}
			return nil
		})
		for key, from := range open {
			truth.intervals[key] = append(truth.intervals[key], [2]int64{from, 0})
		}
	}
	return truth, err
}

// messageExists reports whether a message is in the database at the end.
func (t *chaosTruth) messageExists(id string) bool {
	room, ok := t.msgRoom[id]
	if !ok || t.rooms[room] == nil {
		return false
	}
	_, ok = t.rooms[room].messages[id]
	return ok
}

// memberAt reports whether user was a member of room at seq, in log order.
func (t *chaosTruth) memberAt(room, user string, seq int64) bool {
	for _, in := range t.intervals[room+"|"+user] {
		if seq >= in[0] && (in[1] == 0 || seq <= in[1]) {
			return true
		}
	}
	return false
}

// chaosCompare lists how a client's rooms differ from the database's.
// ids are the records that differ.
func chaosCompare(truth *chaosTruth, user string, got map[string]*chaosRoom) (diffs, ids []string) {
	want := truth.of[user]
	slices.Sort(want)
	have := slices.Sorted(maps.Keys(got))
	if !slices.Equal(want, have) {
		diffs = append(diffs, fmt.Sprintf("rooms: has %v, is a member of %v", have, want))
	}
	for _, id := range want {
		r := got[id]
		if r == nil {
			continue
		}
		w := truth.rooms[id]
		if r.name != w.name {
			diffs = append(diffs, fmt.Sprintf("room %s: name %q, is %q", id, r.name, w.name))
		}
		for _, part := range []struct {
			what      string
			have, was map[string]string
		}{
			{"members", r.members, w.members},
			{"messages", r.messages, w.messages},
			{"reactions", r.reactions, w.reactions},
		} {
			if d, keys := chaosMapDiff(part.have, part.was); d != "" {
				diffs = append(diffs, fmt.Sprintf("room %s %s: %s", id, part.what, d))
				ids = append(ids, keys...)
			}
		}
	}
	return diffs, ids
}

// chaosMapDiff describes the difference between what a client has and what is.
func chaosMapDiff(have, want map[string]string) (string, []string) {
	var parts, keys []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if v, ok := have[k]; !ok {
			parts = append(parts, fmt.Sprintf("missing %s=%q", k, want[k]))
			keys = append(keys, k)
		} else if v != want[k] {
			parts = append(parts, fmt.Sprintf("%s=%q, is %q", k, v, want[k]))
			keys = append(keys, k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(have)) {
		if _, ok := want[k]; !ok {
			parts = append(parts, fmt.Sprintf("extra %s=%q", k, have[k]))
			keys = append(keys, k)
		}
	}
	if len(parts) > 4 {
		parts = append(parts[:4], fmt.Sprintf("… %d more", len(parts)-4))
	}
	return strings.Join(parts, ", "), keys
}

// chaosLeaks checks every event a client held: it fell inside one of the
// user's memberships of its room (by the log's own member.joined and
// member.left order), and its cursor is that of a row of that room.
func chaosLeaks(truth *chaosTruth, user string, held []chaosHeld) (leaks, misplaced int, details []string) {
	for _, h := range held {
		if h.seq == 0 || h.marker {
			continue // no cursor (counted apart), or a marker
		}
		room := h.room
		if h.message != "" {
			if r := truth.msgRoom[h.message]; r != "" {
				room = r
			}
		}
		seq := h.seq
		if next, ok := truth.log[seq+1]; ok && h.message != "" && next.typ == "message.deleted" && next.recordID == h.message {
			seq++ // a reaction gone with its message: the cursor before the message's deletion
		}
		row, logged := truth.log[seq]
		switch {
		case !logged || row.room != room:
			misplaced++
			if len(details) < 5 {
				details = append(details, fmt.Sprintf("cursor %d (%c) of room %q is log row %+v", h.seq, h.src, room, row))
			}
		case !truth.memberAt(room, user, seq):
			leaks++
			if len(details) < 5 {
				details = append(details, fmt.Sprintf("%s at %d (%c) of room %s while not a member (memberships %v)", row.typ, seq, h.src, room, truth.intervals[room+"|"+user]))
			}
		}
	}
	return leaks, misplaced, details
}

// chaosTimeline describes what a client got around a record's changes in
// the log: for a mismatch, the log rows of the record and the client's
// timeline (events and markers, in the order it had them) near them.
func chaosTimeline(truth *chaosTruth, held []chaosHeld, recordID string) string {
	var seqs []int64
	for seq, row := range truth.log {
		if row.recordID == recordID {
			seqs = append(seqs, seq)
		}
	}
	slices.Sort(seqs)
	if len(seqs) == 0 {
		return "no log row"
	}
	out := fmt.Sprintf("log rows of %s: %v;", recordID, seqs)
	lo, hi := seqs[0]-8, seqs[len(seqs)-1]+8
	for i, h := range held {
		if (h.seq >= lo && h.seq <= hi) || (h.marker && h.src != 'L' && i > 0 && i+1 < len(held) && held[i-1].seq >= lo && held[i-1].seq <= hi) {
			if h.marker && h.src != 'L' {
				out += fmt.Sprintf(" [%c %d @%s]", h.src, h.seq, h.at.Round(time.Millisecond))
			} else if h.marker {
				out += fmt.Sprintf(" [%c %d]", h.src, h.seq)
			} else {
				out += fmt.Sprintf(" %d%c", h.seq, h.src)
			}
		}
	}
	return out
}
