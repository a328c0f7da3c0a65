package bench

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/pocketbase/pocketbase/core"

	"github.com/pbchat/pbchat/hooks"
	"github.com/pbchat/pbchat/migrations"
)

// FillEventLog writes the event log a server that had run since the dataset
// began would hold: member.joined for every membership, then
// message.created and reaction.created for every message and its
// reactions, in time order (one INSERT … SELECT; no hooks).
func FillEventLog(app core.App) (int, error) {
	const millis = `CAST((julianday(replace(%s, 'Z', '')) - 2440587.5) * 86400000 AS INTEGER)`
	query := `INSERT INTO ` + migrations.EventsTable + ` (room, type, collection, action, record_id, member, message, created)
		SELECT room, type, collection, 'create', record_id, member, message, created FROM (
			SELECT m.room, 'member.joined' AS type, 'chat_room_users' AS collection, m.id AS record_id, m.user AS member, '' AS message,
				` + fmt.Sprintf(millis, "m.created") + ` AS created, m.created AS at, 0 AS k, m.id AS tie FROM chat_room_users m
			UNION ALL
			SELECT x.room, 'message.created', 'chat_messages', x.id, '', '',
				` + fmt.Sprintf(millis, "x.created") + `, x.created, 1, x.id FROM chat_messages x
			UNION ALL
			SELECT x.room, 'reaction.created', 'chat_message_reactions', r.id, '', r.message,
				` + fmt.Sprintf(millis, "r.created") + `, r.created, 2, x.id FROM chat_message_reactions r JOIN chat_messages x ON x.id = r.message
		) ORDER BY at, tie, k`
	res, err := sqlDB(app).Exec(query)
	if err != nil {
		return 0, fmt.Errorf("fill the event log: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// SyncSince returns a cursor after which the given rooms have exactly
// missed events in the log (the user's rooms: what they missed), all of
// them messages and reactions.
func SyncSince(a *App, rooms []string, missed int) (string, error) {
	var head struct {
		Cursor string `json:"cursor"`
	}
	token, err := a.anyToken()
	if err != nil {
		return "", err
	}
	if err := GetJSON(HTTPClient(1), a.URL+"/api/chat/sync", token, &head); err != nil {
		return "", err
	}
	epoch, _, ok := strings.Cut(head.Cursor, ".")
	if !ok {
		return "", fmt.Errorf("head cursor %q", head.Cursor)
	}
	list, _ := json.Marshal(rooms)
	var seq int64
	err = sqlDB(a.App).QueryRow(`SELECT seq FROM `+migrations.EventsTable+`
		WHERE room IN (SELECT value FROM json_each(?)) AND type != 'member.joined' ORDER BY seq DESC LIMIT 1 OFFSET ?`, string(list), missed).Scan(&seq)
	if err != nil {
		return "", fmt.Errorf("the %d-th last event of %d rooms: %w", missed+1, len(rooms), err)
	}
	return fmt.Sprintf("%s.%d", epoch, seq), nil
}

func (a *App) anyToken() (string, error) {
	tokens, err := a.Tokens([]string{UserID(0)})
	if err != nil {
		return "", err
	}
	return tokens[UserID(0)], nil
}

// WithoutEventLog unbinds the event log's hooks: the baseline of what the
// log costs a send. Sync is wrong on such an app.
func WithoutEventLog(app core.App) {
	app.OnRecordCreate().Unbind(hooks.EventLogHookID)
	app.OnRecordUpdate().Unbind(hooks.EventLogHookID)
	app.OnRecordDelete().Unbind(hooks.EventLogHookID)
}

// SyncTiming is the latency of one catch-up, measured over requests.
type SyncTiming struct {
	Requests  int
	Events    int // per catch-up
	Pages     int // requests per catch-up
	P50, P99  time.Duration
	CPUPerReq time.Duration // process CPU per catch-up (server and client)
}

// TimeSync catches a user up from since, n times, with pages of limit
// events, and reports the latency of a whole catch-up.
func TimeSync(a *App, user, since string, limit, n int) (SyncTiming, error) {
	tokens, err := a.Tokens([]string{user})
	if err != nil {
		return SyncTiming{}, err
	}
	client := HTTPClient(1)
	var lats []time.Duration
	out := SyncTiming{Requests: n}
	cpu0 := CPUTime()
	for i := 0; i < n; i++ {
		start := time.Now()
		cursor, events, pages := since, 0, 0
		for {
			var page struct {
				Cursor string            `json:"cursor"`
				More   bool              `json:"more"`
				Reset  bool              `json:"reset"`
				Events []json.RawMessage `json:"events"`
			}
			u := a.URL + "/api/chat/sync?since=" + url.QueryEscape(cursor) + fmt.Sprintf("&limit=%d", limit)
			if err := GetJSON(client, u, tokens[user], &page); err != nil {
				return out, err
			}
			if page.Reset {
				return out, fmt.Errorf("sync from %s: reset", cursor)
			}
			events += len(page.Events)
			pages++
			cursor = page.Cursor
			if !page.More {
				break
			}
		}
		lats = append(lats, time.Since(start))
		out.Events, out.Pages = events, pages
	}
	out.CPUPerReq = (CPUTime() - cpu0) / time.Duration(max(n, 1))
	out.P50, out.P99 = Percentile(lats, 50), Percentile(lats, 99)
	if out.Events == 0 {
		return out, fmt.Errorf("sync from %s returned nothing", since)
	}
	return out, nil
}
