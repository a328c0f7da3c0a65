package hooks

import (
	"database/sql"
	"fmt"
	"math"
	"strings"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"github.com/pbchat/pbchat/migrations"
)

// overviewRow is one room of an overview page, its room and membership
// already records: read by the page's one query, not loaded again by id.
type overviewRow struct {
	room, membership *core.Record
	unread, mentions int
	last             *lastMessage
	// roomValues and memberValues are the fields' values (PrepareValue of
	// the columns) in Fields order, for the answer encoded without records;
	// roomValues is nil when the room row is gone.
	roomValues, memberValues []any
}

// overviewSQL picks the page by each room's latest activity (one index seek
// per room, memberships read from idx_chat_room_users_user_marks alone),
// then reads for the page's rooms only their unread and mention counts,
// last message (by the rowid the room index holds), room row and membership
// row, the room's and the membership's fields after the first seven columns.
// total is the caller's number of rooms, counted once per query.
// Parameters: ?1 the user, ?2 and ?3 the page's limit and offset.
func overviewSQL(rooms, members *core.Collection) string {
	var columns strings.Builder
	for _, part := range []struct {
		alias      string
		collection *core.Collection
	}{{"r", rooms}, {"m", members}} {
		for _, f := range part.collection.Fields {
			columns.WriteString(", " + part.alias + ".`" + f.GetName() + "`")
		}
	}
	return `SELECT (SELECT count(*) FROM chat_room_users WHERE user = ?1) AS total,
		` + unreadExpr + ` AS unread, ` + mentionsExpr + ` AS mentions,
		lm.id, lm.user, lm.text, lm.created` + columns.String() + `
	FROM (
		SELECT u.rowid AS membership, u.room AS room,
			max(coalesce((SELECT max(y.created) FROM chat_messages y WHERE y.room = u.room), ''), u.created) AS activity
		FROM chat_room_users u
		WHERE u.user = ?1
		ORDER BY activity DESC, u.room
		LIMIT ?2 OFFSET ?3
	) p
	JOIN chat_room_users m ON m.rowid = p.membership
	LEFT JOIN chat_rooms r ON r.id = m.room
	LEFT JOIN chat_messages lm ON lm.rowid = (
		SELECT y.rowid FROM chat_messages y WHERE y.room = m.room ORDER BY y.created DESC, y.id DESC LIMIT 1)
	ORDER BY p.activity DESC, p.room`
}

// overviewPage reads page (from 1) of userID's rooms, perPage of them, and
// the caller's number of rooms. A page past the end reads no rows (and
// counts the rooms alone).
// With records false the rows hold the fields' values alone (see
// overviewRecordsNeeded).
func overviewPage(app core.App, rooms, members *core.Collection, userID string, page, perPage int, records bool) (total int, rows []overviewRow, err error) {
	if page-1 <= (math.MaxInt-perPage)/perPage { // else past any end
		total, rows, err = readOverviewPage(app, rooms, members, userID, perPage, (page-1)*perPage, records)
		if err != nil || len(rows) > 0 {
			return total, rows, err
		}
	}
	err = app.DB().Select("count(*)").From(migrations.RoomUsers).Where(dbx.HashExp{"user": userID}).Row(&total)
	if err != nil {
		return 0, nil, fmt.Errorf("count the rooms of %s: %w", userID, err)
	}
	return total, nil, nil
}

func readOverviewPage(app core.App, rooms, members *core.Collection, userID string, limit, offset int, records bool) (int, []overviewRow, error) {
	result, err := queryRead(app, overviewSQL(rooms, members), userID, limit, offset)
	if err != nil {
		return 0, nil, fmt.Errorf("the rooms of %s: %w", userID, err)
	}
	defer result.Close()

	var total int
	var out []overviewRow
	values := make([]sql.NullString, len(rooms.Fields)+len(members.Fields))
	var lastID, lastUser, lastText, lastAt sql.NullString
	var row overviewRow
	dest := []any{&total, &row.unread, &row.mentions, &lastID, &lastUser, &lastText, &lastAt}
	for i := range values {
		dest = append(dest, &values[i])
	}
	roomID := indexOfID(rooms)
	for result.Next() {
		row = overviewRow{}
		if err := result.Scan(dest...); err != nil {
			return 0, nil, fmt.Errorf("the rooms of %s: %w", userID, err)
		}
		roomColumns, memberColumns := values[:len(rooms.Fields)], values[len(rooms.Fields):]
		if roomColumns[roomID].Valid {
			if row.roomValues, err = fieldValues(rooms, roomColumns); err != nil {
				return 0, nil, err
			}
		}
		if row.memberValues, err = fieldValues(members, memberColumns); err != nil {
			return 0, nil, err
		}
		if records {
			if row.roomValues != nil {
				if row.room, err = recordFromValues(rooms, row.roomValues); err != nil {
					return 0, nil, err
				}
			}
			if row.membership, err = recordFromValues(members, row.memberValues); err != nil {
				return 0, nil, err
			}
		}
		if lastID.Valid {
			row.last = &lastMessage{ID: lastID.String, User: lastUser.String, Text: lastText.String, Created: lastAt.String}
		}
		out = append(out, row)
	}
	if err := result.Err(); err != nil {
		return 0, nil, fmt.Errorf("the rooms of %s: %w", userID, err)
	}
	return total, out, nil
}

// indexOfID is the position of the id field among c's fields.
func indexOfID(c *core.Collection) int {
	for i, f := range c.Fields {
		if f.GetName() == core.FieldNameId {
			return i
		}
	}
	return 0
}

// fieldValues are c's fields' values of the columns values, in c.Fields
// order: what FindRecordsByIds makes of the same row (each field's
// PrepareValue of the column's text, or of nil for NULL).
func fieldValues(c *core.Collection, values []sql.NullString) ([]any, error) {
	out := make([]any, len(c.Fields))
	for i, f := range c.Fields {
		var raw any
		if values[i].Valid {
			raw = values[i].String
		}
		// No field's PrepareValue reads the record (PocketBase v0.40).
		value, err := f.PrepareValue(nil, raw)
		if err != nil {
			return nil, fmt.Errorf("%s.%s: %w", c.Name, f.GetName(), err)
		}
		out[i] = value
	}
	return out, nil
}

// recordFromValues is the record of c with the fields' values, in c.Fields
// order, as fieldValues reads them.
func recordFromValues(c *core.Collection, values []any) (*core.Record, error) {
	record := core.NewRecord(c)
	for i, f := range c.Fields {
		record.SetRaw(f.GetName(), values[i])
	}
	if err := record.PostScan(); err != nil {
		return nil, fmt.Errorf("%s: %w", c.Name, err)
	}
	return record, nil
}
