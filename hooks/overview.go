package hooks

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/types"

	"github.com/pbchat/pbchat/internal/chat"
	"github.com/pbchat/pbchat/migrations"
)

const (
	defaultPerPage = 30
	maxPerPage     = 200
)

// unreadExpr counts others' messages in m's room after m's last_seen_at (or
// from joining on: a message written in the millisecond the member was added,
// as in one batch, is theirs to read), system messages left out: a range scan
// of idx_chat_messages_room_created, which holds user and system.
const unreadExpr = `(SELECT count(*) FROM chat_messages x
	WHERE x.room = m.room
	  AND x.created >= (CASE WHEN m.last_seen_at != '' THEN m.last_seen_at ELSE m.created END)
	  AND (m.last_seen_at = '' OR x.created != m.last_seen_at)
	  AND x.user != m.user AND x.system = '')`

// unreadSQL is every room of the caller (?1) with its unread and mention
// counts, from idx_chat_room_users_user_marks and range scans of the
// message and mention indexes.
const unreadSQL = `SELECT m.room AS room, m.muted AS muted, ` + unreadExpr + ` AS unread, ` + mentionsExpr + ` AS mentions
	FROM chat_room_users m WHERE m.user = ?1`

type overview struct{ settings chat.Settings }

type lastMessage struct {
	ID      string `json:"id"`
	User    string `json:"user"`
	Text    string `json:"text"`
	Created string `json:"created"`
}

type overviewItem struct {
	Room        *core.Record `json:"room"`
	Membership  *core.Record `json:"membership"`
	UnreadCount int          `json:"unread_count"`
	// UnreadMentions counts the unread messages that mention the caller.
	UnreadMentions int          `json:"unread_mentions"`
	LastMessage    *lastMessage `json:"last_message"`
}

// rooms serves GET /api/chat/rooms: the caller's rooms, newest activity first.
func (h overview) rooms(e *core.RequestEvent) error {
	userID := authUserID(e, h.settings)
	page, perPage, err := pagination(e)
	if err != nil {
		return err
	}

	rooms, err := e.App.FindCachedCollectionByNameOrId(migrations.Rooms)
	if err != nil {
		return serverError(err)
	}
	members, err := e.App.FindCachedCollectionByNameOrId(migrations.RoomUsers)
	if err != nil {
		return serverError(err)
	}
	records := overviewRecordsNeeded(e, rooms, members)
	total, rows, err := overviewPage(e.App, rooms, members, userID, page, perPage, records)
	if err != nil {
		return serverError(err)
	}
	if !records {
		body, err := appendOverviewJSON(nil, rooms, members, page, perPage, total, rows)
		if err != nil {
			return serverError(err)
		}
		return e.Blob(http.StatusOK, "application/json", body)
	}
	return overviewWithRecords(e, page, perPage, total, rows)
}

// overviewWithRecords answers with PocketBase's records, enriched (the
// host's enrich hooks, expand) and encoded by PocketBase (fields).
func overviewWithRecords(e *core.RequestEvent, page, perPage, total int, rows []overviewRow) error {
	rooms := make([]*core.Record, 0, len(rows))
	memberships := make([]*core.Record, 0, len(rows))
	items := make([]overviewItem, 0, len(rows))
	for _, row := range rows {
		if row.room != nil {
			rooms = append(rooms, row.room)
		}
		memberships = append(memberships, row.membership)
		items = append(items, overviewItem{Room: row.room, Membership: row.membership, UnreadCount: row.unread, UnreadMentions: row.mentions, LastMessage: row.last})
	}
	// The host app's enrich hooks and an expand parameter apply to the
	// page's rooms and memberships as to any record the API returns.
	if err := enrich(e, rooms); err != nil {
		return serverError(err)
	}
	if err := enrich(e, memberships); err != nil {
		return serverError(err)
	}
	return e.JSON(http.StatusOK, map[string]any{
		"page":       page,
		"perPage":    perPage,
		"totalItems": total,
		"totalPages": (total + perPage - 1) / perPage,
		"items":      items,
	})
}

// unread serves GET /api/chat/unread: per room, and a total without muted
// rooms; mentions per room and in total, muted rooms included.
func (h overview) unread(e *core.RequestEvent) error {
	userID := authUserID(e, h.settings)
	// A prepared statement, scanned by hand: with 200 rooms, mapping rows
	// onto a struct by reflection cost a tenth of the request.
	rows, err := queryRead(e.App, unreadSQL, userID)
	if err != nil {
		return serverError(fmt.Errorf("unread counts of %s: %w", userID, err))
	}
	defer rows.Close()
	total, perRoom := 0, map[string]int{}
	mentionTotal, mentionRooms := 0, map[string]int{}
	var room string
	var muted bool
	var unread, mentions int
	for rows.Next() {
		if err := rows.Scan(&room, &muted, &unread, &mentions); err != nil {
			return serverError(fmt.Errorf("unread counts of %s: %w", userID, err))
		}
		perRoom[room] = unread
		mentionRooms[room] = mentions
		mentionTotal += mentions
		if !muted {
			total += unread
		}
	}
	if err := rows.Err(); err != nil {
		return serverError(fmt.Errorf("unread counts of %s: %w", userID, err))
	}
	return e.JSON(http.StatusOK, map[string]any{"total": total, "rooms": perRoom,
		"mentions": map[string]any{"total": mentionTotal, "rooms": mentionRooms}})
}

// read serves POST /api/chat/rooms/{id}/read: the caller has seen everything until now.
func (h overview) read(e *core.RequestEvent) error {
	membership, err := findMembership(e.App, e.Request.PathValue("id"), authUserID(e, h.settings))
	if err != nil {
		return err
	}
	if membership == nil {
		return e.NotFoundError("The room does not exist or you are not a member of it.", nil)
	}
	membership.Set("last_seen_at", types.NowDateTime())
	if err := e.App.Save(membership); err != nil {
		return inputError(e, "Failed to mark the room as read.", err)
	}
	if err := apis.EnrichRecord(e, membership); err != nil {
		return serverError(err)
	}
	return e.JSON(http.StatusOK, membership)
}

// typing serves POST /api/chat/rooms/{id}/typing: the room's other connected members hear it.
func (h overview) typing(publish chat.Publisher) func(e *core.RequestEvent) error {
	return func(e *core.RequestEvent) error {
		roomID := e.Request.PathValue("id")
		userID := authUserID(e, h.settings)
		membership, err := findMembership(e.App, roomID, userID)
		if err != nil {
			return err
		}
		if membership == nil {
			return e.NotFoundError("The room does not exist or you are not a member of it.", nil)
		}
		record, err := json.Marshal(map[string]string{"room": roomID, "user": userID})
		if err != nil {
			return serverError(err)
		}
		publish(chat.Event{Room: roomID, Type: chat.EventTyping, Record: record, Except: userID})
		return e.NoContent(http.StatusNoContent)
	}
}

// pagination reads page (default 1) and perPage (default 30, at most 200,
// as PocketBase caps its own perPage). A page too large for an int is past
// any end; a page or perPage below 1, or not an integer, is a 400 naming it.
func pagination(e *core.RequestEvent) (page, perPage int, err error) {
	page, err = positiveParam(e, "page", 1, math.MaxInt)
	if err != nil {
		return 0, 0, err
	}
	perPage, err = positiveParam(e, "perPage", defaultPerPage, maxPerPage)
	if err != nil {
		return 0, 0, err
	}
	return page, min(perPage, maxPerPage), nil
}

// positiveParam is the query parameter name as an integer of at least 1: def
// when absent, huge when it overflows an int.
func positiveParam(e *core.RequestEvent, name string, def, huge int) (int, error) {
	raw := e.Request.URL.Query().Get(name)
	if raw == "" {
		return def, nil
	}
	n, err := strconv.Atoi(raw)
	if errors.Is(err, strconv.ErrRange) && !strings.HasPrefix(raw, "-") {
		return huge, nil
	}
	if err != nil || n < 1 {
		return 0, e.BadRequestError("Invalid "+name+".", fieldError(name, "invalid_"+strings.ToLower(name), name+" must be an integer of at least 1"))
	}
	return n, nil
}

// enrich runs PocketBase's record enrichment (enrich hooks, expand) on records.
func enrich(e *core.RequestEvent, records []*core.Record) error {
	if len(records) == 0 {
		return nil
	}
	return apis.EnrichRecords(e, records)
}

// recordsByID loads and enriches records (one query) keyed by id.
func recordsByID(e *core.RequestEvent, collection string, ids []string) (map[string]*core.Record, error) {
	out := make(map[string]*core.Record, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	records, err := e.App.FindRecordsByIds(collection, ids)
	if err != nil {
		return nil, err
	}
	if err := apis.EnrichRecords(e, records); err != nil {
		return nil, err
	}
	for _, r := range records {
		out[r.Id] = r
	}
	return out, nil
}
