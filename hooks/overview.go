package hooks

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/pocketbase/dbx"
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

	var total int
	if err := e.App.DB().Select("count(*)").From(migrations.RoomUsers).
		Where(dbx.HashExp{"user": userID}).Row(&total); err != nil {
		return serverError(fmt.Errorf("count the rooms of %s: %w", userID, err))
	}
	totalPages := (total + perPage - 1) / perPage
	response := map[string]any{
		"page":       page,
		"perPage":    perPage,
		"totalItems": total,
		"totalPages": totalPages,
		"items":      []overviewItem{},
	}
	if page > totalPages {
		// Past the end (and (page-1)*perPage could overflow): nothing to read.
		return e.JSON(http.StatusOK, response)
	}

	var rows []struct {
		Membership string         `db:"membership"`
		Room       string         `db:"room"`
		Unread     int            `db:"unread"`
		Mentions   int            `db:"mentions"`
		LastID     sql.NullString `db:"lm_id"`
		LastUser   sql.NullString `db:"lm_user"`
		LastText   sql.NullString `db:"lm_text"`
		LastAt     sql.NullString `db:"lm_created"`
	}
	// The page is chosen first, by each room's latest activity (one index
	// seek per room); unread counts and last messages are then read for the
	// page's rooms only, not for every room of the caller.
	err = e.App.DB().NewQuery(`
		SELECT m.id AS membership, m.room AS room, ` + unreadExpr + ` AS unread, ` + mentionsExpr + ` AS mentions,
		       lm.id AS lm_id, lm.user AS lm_user, lm.text AS lm_text, lm.created AS lm_created
		FROM (
			SELECT m.*, max(coalesce((SELECT max(y.created) FROM chat_messages y WHERE y.room = m.room), ''), m.created) AS activity
			FROM chat_room_users m
			WHERE m.user = {:user}
			ORDER BY activity DESC, m.room
			LIMIT {:limit} OFFSET {:offset}
		) m
		LEFT JOIN chat_messages lm ON lm.id = (
			SELECT y.id FROM chat_messages y WHERE y.room = m.room ORDER BY y.created DESC, y.id DESC LIMIT 1)
		ORDER BY m.activity DESC, m.room`).
		Bind(dbx.Params{"user": userID, "limit": perPage, "offset": (page - 1) * perPage}).
		All(&rows)
	if err != nil {
		return serverError(fmt.Errorf("the rooms of %s: %w", userID, err))
	}

	roomIDs := make([]string, len(rows))
	membershipIDs := make([]string, len(rows))
	for i, row := range rows {
		roomIDs[i], membershipIDs[i] = row.Room, row.Membership
	}
	rooms, err := recordsByID(e, migrations.Rooms, roomIDs)
	if err != nil {
		return serverError(err)
	}
	memberships, err := recordsByID(e, migrations.RoomUsers, membershipIDs)
	if err != nil {
		return serverError(err)
	}

	items := make([]overviewItem, 0, len(rows))
	for _, row := range rows {
		item := overviewItem{Room: rooms[row.Room], Membership: memberships[row.Membership], UnreadCount: row.Unread, UnreadMentions: row.Mentions}
		if row.LastID.Valid {
			item.LastMessage = &lastMessage{ID: row.LastID.String, User: row.LastUser.String, Text: row.LastText.String, Created: row.LastAt.String}
		}
		items = append(items, item)
	}
	response["items"] = items
	return e.JSON(http.StatusOK, response)
}

// unread serves GET /api/chat/unread: per room, and a total without muted
// rooms; mentions per room and in total, muted rooms included.
func (h overview) unread(e *core.RequestEvent) error {
	var rows []struct {
		Room     string `db:"room"`
		Muted    bool   `db:"muted"`
		Unread   int    `db:"unread"`
		Mentions int    `db:"mentions"`
	}
	userID := authUserID(e, h.settings)
	err := e.App.DB().NewQuery(`SELECT m.room AS room, m.muted AS muted, ` + unreadExpr + ` AS unread, ` + mentionsExpr + ` AS mentions
		FROM chat_room_users m WHERE m.user = {:user}`).
		Bind(dbx.Params{"user": userID}).All(&rows)
	if err != nil {
		return serverError(fmt.Errorf("unread counts of %s: %w", userID, err))
	}
	total, perRoom := 0, make(map[string]int, len(rows))
	mentionTotal, mentionRooms := 0, make(map[string]int, len(rows))
	for _, row := range rows {
		perRoom[row.Room] = row.Unread
		mentionRooms[row.Room] = row.Mentions
		mentionTotal += row.Mentions
		if !row.Muted {
			total += row.Unread
		}
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
