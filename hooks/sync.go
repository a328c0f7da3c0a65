package hooks

import (
	"cmp"
	"database/sql"
	"encoding/json"
	"encoding/json/jsontext"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/pocketbase/pocketbase/core"

	"github.com/pbchat/pbchat/internal/chat"
	"github.com/pbchat/pbchat/migrations"
)

const (
	defaultSyncLimit = 100
	maxSyncLimit     = 1000
	maxCursorLength  = 64
)

type syncer struct{ settings chat.Settings }

// syncAnswer is the body of GET /api/chat/sync.
type syncAnswer struct {
	// Cursor is where to resume: after the last event returned, or the
	// log's head when nothing more is waiting.
	Cursor string      `json:"cursor"`
	More   bool        `json:"more"`
	Reset  bool        `json:"reset"`
	Events []syncEvent `json:"events"`
}

// syncEvent is one change as the realtime room topics name it, with the
// record as the records API shows it now (a tombstone for deletes).
type syncEvent struct {
	Cursor     string  `json:"cursor"`
	Type       string  `json:"type"`
	Room       string  `json:"room"`
	Collection string  `json:"collection"`
	Action     string  `json:"action"`
	Record     rawJSON `json:"record"`
}

// rawJSON is JSON text kept as a string: a slice of the query's packed
// value, copied nowhere until it is written out.
type rawJSON string

// MarshalJSON writes the encoded record as it is.
func (r rawJSON) MarshalJSON() ([]byte, error) { return []byte(r), nil }

// sync serves GET /api/chat/sync?since=CURSOR&limit=N: the caller's events
// after since, oldest first.
func (h syncer) sync(e *core.RequestEvent) error {
	query := e.Request.URL.Query()
	limit := defaultSyncLimit
	if raw := query.Get("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > maxSyncLimit {
			return e.BadRequestError("Invalid limit.", fieldError("limit", "invalid_limit",
				fmt.Sprintf("limit must be a whole number from 1 to %d", maxSyncLimit)))
		}
		limit = n
	}
	since := query.Get("since")
	if len(since) > maxCursorLength {
		return e.BadRequestError("Invalid since.", fieldError("since", "invalid_cursor",
			"since must be a cursor this server handed out"))
	}
	answer, err := readSync(e.App, authUserID(e, h.settings), since, limit)
	if err != nil {
		return err
	}
	if query.Get("fields") != "" {
		return e.JSON(http.StatusOK, answer) // PocketBase's field picker
	}
	// Written out: the records are JSON already, and PocketBase's encoder
	// would parse each of them again.
	size := 128
	for _, ev := range answer.Events {
		size += len(ev.Record) + 160
	}
	return e.Blob(http.StatusOK, "application/json", answer.appendJSON(make([]byte, 0, size)))
}

// appendJSON appends the answer as JSON (what e.JSON would write).
func (a *syncAnswer) appendJSON(b []byte) []byte {
	b = append(b, `{"cursor":`...)
	b, _ = jsontext.AppendQuote(b, a.Cursor)
	b = append(b, `,"more":`...)
	b = strconv.AppendBool(b, a.More)
	b = append(b, `,"reset":`...)
	b = strconv.AppendBool(b, a.Reset)
	b = append(b, `,"events":[`...)
	for i, ev := range a.Events {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"cursor":`...)
		b, _ = jsontext.AppendQuote(b, ev.Cursor)
		b = append(b, `,"type":`...)
		b, _ = jsontext.AppendQuote(b, ev.Type)
		b = append(b, `,"room":`...)
		b, _ = jsontext.AppendQuote(b, ev.Room)
		b = append(b, `,"collection":`...)
		b, _ = jsontext.AppendQuote(b, ev.Collection)
		b = append(b, `,"action":`...)
		b, _ = jsontext.AppendQuote(b, ev.Action)
		b = append(b, `,"record":`...)
		b = append(b, ev.Record...)
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// logRow is one row of the event log.
type logRow struct {
	Seq        int64  `db:"seq"`
	Room       string `db:"room"`
	Type       string `db:"type"`
	Collection string `db:"collection"`
	Action     string `db:"action"`
	RecordID   string `db:"record_id"`
	Member     string `db:"member"`
	Message    string `db:"message"`
}

// packedLogRow is a log row as one text value, its columns separated by
// unitSep; eventsSQL packs its rows into one value separated by recordSep.
// A thousand rows then cost one column read instead of eight thousand (each
// a Go string, which is what a sync's time went to besides SQLite itself).
// Ids and event types never hold those two control characters.
const packedLogRow = `concat_ws(char(31), e.seq, e.room, e.type, e.collection, e.action, e.record_id, e.member, e.message)`

const (
	unitSep   = "\x1f"
	recordSep = "\x1e"
)

// unpackLogRows splits eventsSQL's value into rows (sharing its memory).
func unpackLogRows(packed string) ([]logRow, error) {
	if packed == "" {
		return nil, nil
	}
	rows := make([]logRow, 0, strings.Count(packed, recordSep)+1)
	for line := range strings.SplitSeq(packed, recordSep) {
		var f [8]string
		rest := line
		for i := range f {
			var found bool
			f[i], rest, found = strings.Cut(rest, unitSep)
			if found != (i < len(f)-1) {
				return nil, fmt.Errorf("pbchat sync: malformed log row %q", line)
			}
		}
		seq, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("pbchat sync: malformed log row %q", line)
		}
		rows = append(rows, logRow{Seq: seq, Room: f[1], Type: f[2], Collection: f[3], Action: f[4], RecordID: f[5], Member: f[6], Message: f[7]})
	}
	slices.SortFunc(rows, func(a, b logRow) int { return cmp.Compare(a.Seq, b.Seq) })
	return rows, nil
}

// logState is what decides whether a cursor can be served.
type logState struct {
	epochs  []epochRange
	head    int64 // the last seq committed (pruning keeps the newest row)
	horizon int64 // events up to it are pruned
}

type epochRange struct {
	ID    string
	First int64
}

// cursorAt is the cursor of seq: in the last epoch that began at or before it.
func (s logState) cursorAt(seq int64) string {
	for i := len(s.epochs) - 1; i >= 0; i-- {
		if s.epochs[i].First-1 <= seq {
			return cursor{s.epochs[i].ID, seq}.String()
		}
	}
	if len(s.epochs) > 0 {
		return cursor{s.epochs[0].ID, seq}.String()
	}
	return ""
}

// serves reports whether every event after c is still in this log: c's
// epoch is one of this database's, c lies within what that epoch wrote, and
// nothing after c has been pruned.
func (s logState) serves(c cursor) bool {
	for i, ep := range s.epochs {
		if ep.ID != c.epoch {
			continue
		}
		end := s.head
		if i+1 < len(s.epochs) {
			end = s.epochs[i+1].First - 1
		}
		return c.seq >= ep.First-1 && c.seq <= end && c.seq >= s.horizon
	}
	return false
}

// logStateSQL is the epochs, oldest first, each with the log's first and
// last seq (one row with no epoch when there is none): one statement, not
// two, as every sync begins with it.
const logStateSQL = `WITH h(head, first) AS MATERIALIZED (
		SELECT coalesce((SELECT max(seq) FROM ` + migrations.EventsTable + `), 0), (SELECT min(seq) FROM ` + migrations.EventsTable + `)
	)
	SELECT e.epoch, e.first_seq, h.head, h.first FROM h LEFT JOIN ` + migrations.EpochsTable + ` e ON 1
	ORDER BY e.first_seq, e.rowid`

func loadLogState(tx *syncTx) (logState, error) {
	var s logState
	rows, err := tx.query(logStateSQL)
	if err != nil {
		return s, fmt.Errorf("pbchat sync: log state: %w", err)
	}
	var first sql.NullInt64
	for rows.Next() {
		var epoch sql.NullString
		var firstSeq sql.NullInt64
		if err := rows.Scan(&epoch, &firstSeq, &s.head, &first); err != nil {
			rows.Close()
			return s, fmt.Errorf("pbchat sync: log state: %w", err)
		}
		if epoch.Valid {
			s.epochs = append(s.epochs, epochRange{ID: epoch.String, First: firstSeq.Int64})
		}
	}
	if err := closeRows(rows); err != nil {
		return s, fmt.Errorf("pbchat sync: log state: %w", err)
	}
	s.horizon = s.head
	if first.Valid {
		s.horizon = first.Int64 - 1
	}
	return s, nil
}

// readSync reads the answer in one read transaction: memberships and the
// log as of one moment.
func readSync(app core.App, userID, since string, limit int) (*syncAnswer, error) {
	db, err := beginSync(app)
	if err != nil {
		return nil, err
	}
	defer db.tx.Rollback()
	state, err := loadLogState(db)
	if err != nil {
		return nil, err
	}
	answer := &syncAnswer{Cursor: state.cursorAt(state.head), Events: []syncEvent{}}
	if since == "" {
		return answer, nil
	}
	from, ok := parseCursor(since)
	if !ok || !state.serves(from) {
		answer.Reset = true
		return answer, nil
	}

	scope, err := loadSyncScope(db, userID, from.seq)
	if err != nil {
		return nil, err
	}
	rows, err := scope.events(db, state.head, limit+1)
	if err != nil {
		return nil, err
	}
	if len(rows) > limit {
		rows = rows[:limit]
		answer.More = true
		answer.Cursor = state.cursorAt(rows[len(rows)-1].Seq)
	}
	answer.Events, err = syncEvents(app, db, state, rows)
	if err != nil {
		return nil, err
	}
	return answer, nil
}

// syncScope is what of the log a user may have after a cursor: the rooms
// they are a member of now, from their latest join on; their own leaves;
// the deletion of a room they were in when it went. Never a room's changes
// after they left it or before they (re)joined it.
type syncScope struct {
	since   int64
	windows [][2]any // [room, after]: the room's events with seq > after
	extra   []int64  // single rows: their member.left, room.deleted
}

// joinsSQL is a user's latest join and leave per room: a range of
// idx_pbchat_events_member. (Written out, the member and type conditions
// select that partial index.)
const joinsSQL = `SELECT type, room, max(seq) AS seq FROM ` + migrations.EventsTable + `
	WHERE member = ?1 AND member != '' AND type IN ('` + chat.EventMemberJoined + `', '` + chat.EventMemberLeft + `')
	GROUP BY type, room`

// deletionsSQL is the room.deleted rows of rooms: idx_pbchat_events_room_deleted.
const deletionsSQL = `SELECT room, seq FROM ` + migrations.EventsTable + `
	WHERE type = '` + chat.EventRoomDeleted + `' AND room IN (SELECT value FROM json_each(?1))`

// scopeSQL is a user's rooms now (with an empty type) and their latest joins and
// leaves (joinsSQL): one statement, not two.
const scopeSQL = `SELECT '' AS type, room, 0 AS seq FROM ` + migrations.RoomUsers + ` WHERE user = ?1
	UNION ALL ` + joinsSQL

func loadSyncScope(db *syncTx, userID string, since int64) (*syncScope, error) {
	scope := &syncScope{since: since}

	var current []string
	joined := map[string]int64{} // room → seq of the latest member.joined
	left := map[string]int64{}   // room → seq of the latest member.left
	rows, err := db.query(scopeSQL, userID)
	if err != nil {
		return nil, fmt.Errorf("pbchat sync: memberships, joins and leaves: %w", err)
	}
	for rows.Next() {
		var typ, room string
		var seq int64
		if err := rows.Scan(&typ, &room, &seq); err != nil {
			rows.Close()
			return nil, fmt.Errorf("pbchat sync: memberships, joins and leaves: %w", err)
		}
		switch typ {
		case "":
			current = append(current, room)
		case chat.EventMemberJoined:
			joined[room] = seq
		default:
			left[room] = seq
		}
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("pbchat sync: memberships, joins and leaves: %w", err)
	}

	isMember := make(map[string]bool, len(current))
	for _, room := range current {
		isMember[room] = true
		// From their latest join on (their own member.joined included);
		// a membership older than the log has no join row: from since.
		scope.windows = append(scope.windows, [2]any{room, max(since, joined[room]-1)})
	}
	var gone []string // rooms they left after since and are not back in
	for room, seq := range left {
		if seq <= since {
			continue
		}
		if isMember[room] {
			if seq < joined[room] {
				scope.extra = append(scope.extra, seq) // left, then back: the leave, then the window
			}
			continue
		}
		scope.extra = append(scope.extra, seq)
		gone = append(gone, room)
	}
	if len(gone) == 0 {
		return scope, nil
	}

	// A room deleted while they were in it: room.deleted comes right before
	// the member.left rows of its cascade, after their latest join.
	rows, err = db.query(deletionsSQL, jsonList(gone))
	if err != nil {
		return nil, fmt.Errorf("pbchat sync: deleted rooms: %w", err)
	}
	for rows.Next() {
		var room string
		var seq int64
		if err := rows.Scan(&room, &seq); err != nil {
			rows.Close()
			return nil, fmt.Errorf("pbchat sync: deleted rooms: %w", err)
		}
		if seq > since && seq > joined[room] && seq < left[room] {
			scope.extra = append(scope.extra, seq)
		}
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("pbchat sync: deleted rooms: %w", err)
	}
	return scope, nil
}

// eventsSQL reads the first ?5 (limit) events of the windows and the extra
// rows (packed, see packedLogRow) in two steps: their seqs from
// idx_pbchat_events_room alone (one (room, seq) range per window, cut at the
// window's limit-th event: the answer never needs more from one room, so
// a long backlog in one room costs a page, not the backlog), then those
// rows by seq. LIMIT and OFFSET take their parameters through a CAST: SQLite
// reads a bare parameter there when it plans the statement, and then plans
// the prepared statement anew on every run (sqlite3Reprepare in pprof).
const eventsSQL = `WITH w(room, after) AS MATERIALIZED (
		SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?1)
	), c(room, after, upto) AS MATERIALIZED (
		SELECT room, after, coalesce((SELECT x.seq FROM ` + migrations.EventsTable + ` x
			WHERE x.room = w.room AND x.seq > w.after ORDER BY x.seq LIMIT 1 OFFSET CAST(?3 AS INTEGER)), ?4)
		FROM w
	)
	SELECT coalesce(group_concat(` + packedLogRow + `, char(30)), '') FROM ` + migrations.EventsTable + ` e WHERE e.seq IN (
		SELECT x.seq FROM c CROSS JOIN ` + migrations.EventsTable + ` x
			ON x.room = c.room AND x.seq > c.after AND x.seq <= c.upto
		UNION ALL
		SELECT value FROM json_each(?2)
		ORDER BY 1 LIMIT CAST(?5 AS INTEGER)
	)`

func (s *syncScope) events(db *syncTx, head int64, limit int) ([]logRow, error) {
	if len(s.windows) == 0 && len(s.extra) == 0 {
		return nil, nil
	}
	var packed string
	err := db.queryRow(eventsSQL, []any{jsonList(s.windows), jsonList(s.extra), limit - 1, head, limit}, &packed)
	if err != nil {
		return nil, fmt.Errorf("pbchat sync: events: %w", err)
	}
	return unpackLogRows(packed)
}

// syncEvents turns log rows into events: the current record for creates and
// updates (one query per collection), a tombstone for deletes. A record
// changed several times in a row is caught up once, at its last change, in
// its latest state (a created-then-edited message comes as created); a
// change to a record that is gone since is left out (its deletion, or its
// room's or message's, comes later in the log).
func syncEvents(app core.App, db *syncTx, state logState, rows []logRow) ([]syncEvent, error) {
	ids := map[string][]string{}
	for _, row := range rows {
		if row.Action != "delete" {
			ids[row.Collection] = append(ids[row.Collection], row.RecordID)
		}
	}
	records := map[string]map[string]rawJSON{}
	for name, list := range ids {
		loaded, err := loadRecordsJSON(app, db, name, list)
		if err != nil {
			return nil, err
		}
		records[name] = loaded
	}

	type recordKey struct{ collection, id string }
	kept := make([]bool, len(rows))
	types := make([]string, len(rows))
	actions := make([]string, len(rows))
	latest := map[recordKey]int{} // the kept row of the record's current run of changes
	for i := len(rows) - 1; i >= 0; i-- {
		row := rows[i]
		key := recordKey{row.Collection, row.RecordID}
		types[i], actions[i] = row.Type, row.Action
		if row.Action == "delete" {
			kept[i] = true
			delete(latest, key) // what came before the delete is another run
			continue
		}
		if _, ok := records[row.Collection][row.RecordID]; !ok {
			continue
		}
		if j, ok := latest[key]; ok {
			if row.Action == "create" {
				types[j], actions[j] = row.Type, row.Action
			}
			continue
		}
		latest[key] = i
		kept[i] = true
	}

	out := make([]syncEvent, 0, len(rows))
	for i, row := range rows {
		if !kept[i] {
			continue
		}
		ev := syncEvent{
			Cursor:     state.cursorAt(row.Seq),
			Type:       types[i],
			Room:       row.Room,
			Collection: row.Collection,
			Action:     actions[i],
		}
		if row.Action == "delete" {
			raw, err := json.Marshal(tombstone(app, row))
			if err != nil {
				return nil, err
			}
			ev.Record = rawJSON(raw)
		} else {
			ev.Record = records[row.Collection][row.RecordID]
		}
		out = append(out, ev)
	}
	return out, nil
}

// tombstone is what is left of a deleted record: its id and collection, its
// room, and the member of a membership or the message of a reaction.
func tombstone(app core.App, row logRow) map[string]any {
	t := map[string]any{"id": row.RecordID, "collectionName": row.Collection, "room": row.Room}
	if collection, err := app.FindCachedCollectionByNameOrId(row.Collection); err == nil {
		t["collectionId"] = collection.Id
	}
	switch row.Collection {
	case migrations.RoomUsers:
		t["user"] = row.Member
	case migrations.MessageReacts:
		t["message"] = row.Message
	}
	return t
}

// jsonList is items as a JSON array ("[]" when empty: json_each of null is one row).
func jsonList[T any](items []T) string {
	if len(items) == 0 {
		return "[]"
	}
	raw, _ := json.Marshal(items)
	return string(raw)
}
