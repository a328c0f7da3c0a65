package hooks

import (
	"encoding/json/jsontext"
	"encoding/json/v2"
	"math"
	"slices"
	"strconv"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/types"
)

// overviewRecordsNeeded tells whether the overview must answer with
// PocketBase's records: when the host app has enrich hooks, the request
// asks for expand or fields, a superuser calls (hidden fields shown), or a
// collection is an auth one (email visibility). Otherwise the answer is
// encoded from the rows' values, as PocketBase would encode the records:
// its record JSON (a map per record, sorted) was a fifth of the request.
func overviewRecordsNeeded(e *core.RequestEvent, rooms, members *core.Collection) bool {
	query := e.Request.URL.Query()
	return e.App.OnRecordEnrich().Length() > 0 ||
		query.Get("expand") != "" || query.Get("fields") != "" ||
		e.HasSuperuserAuth() || rooms.IsAuth() || members.IsAuth()
}

// appendOverviewJSON appends the overview's answer as PocketBase's e.JSON
// encodes overviewWithRecords' (its keys in sorted order).
func appendOverviewJSON(b []byte, rooms, members *core.Collection, page, perPage, total int, rows []overviewRow) ([]byte, error) {
	roomKeys, memberKeys := recordKeys(rooms), recordKeys(members)
	var err error
	b = append(b, `{"items":[`...)
	for i, row := range rows {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"room":`...)
		if b, err = appendRecordJSON(b, rooms, roomKeys, row.roomValues); err != nil {
			return nil, err
		}
		b = append(b, `,"membership":`...)
		if b, err = appendRecordJSON(b, members, memberKeys, row.memberValues); err != nil {
			return nil, err
		}
		b = append(b, `,"unread_count":`...)
		b = strconv.AppendInt(b, int64(row.unread), 10)
		b = append(b, `,"unread_mentions":`...)
		b = strconv.AppendInt(b, int64(row.mentions), 10)
		b = append(b, `,"last_message":`...)
		if row.last == nil {
			b = append(b, "null"...)
		} else {
			b = append(b, `{"id":`...)
			b = appendJSONString(b, row.last.ID)
			b = append(b, `,"user":`...)
			b = appendJSONString(b, row.last.User)
			b = append(b, `,"text":`...)
			b = appendJSONString(b, row.last.Text)
			b = append(b, `,"created":`...)
			b = appendJSONString(b, row.last.Created)
			b = append(b, '}')
		}
		b = append(b, '}')
	}
	b = append(b, `],"page":`...)
	b = strconv.AppendInt(b, int64(page), 10)
	b = append(b, `,"perPage":`...)
	b = strconv.AppendInt(b, int64(perPage), 10)
	b = append(b, `,"totalItems":`...)
	b = strconv.AppendInt(b, int64(total), 10)
	b = append(b, `,"totalPages":`...)
	b = strconv.AppendInt(b, int64((total+perPage-1)/perPage), 10)
	return append(b, '}'), nil
}

// recordKey is a key of a record's JSON: a field (its index in Fields) or,
// with field -1, the collection's id or name.
type recordKey struct {
	name  string
	field int
}

// recordKeys are the keys of c's records' JSON in PublicExport's order
// (sorted): the visible fields, collectionId and collectionName.
func recordKeys(c *core.Collection) []recordKey {
	keys := make([]recordKey, 0, len(c.Fields)+2)
	for i, f := range c.Fields {
		if !f.GetHidden() {
			keys = append(keys, recordKey{f.GetName(), i})
		}
	}
	keys = append(keys, recordKey{core.FieldNameCollectionId, -1}, recordKey{core.FieldNameCollectionName, -1})
	slices.SortFunc(keys, func(a, b recordKey) int {
		switch {
		case a.name < b.name:
			return -1
		case a.name > b.name:
			return 1
		}
		return 0
	})
	return keys
}

// appendRecordJSON appends the JSON of c's record with the fields' values
// (nil values: null), as Record.MarshalJSON encodes it.
func appendRecordJSON(b []byte, c *core.Collection, keys []recordKey, values []any) ([]byte, error) {
	if values == nil {
		return append(b, "null"...), nil
	}
	var err error
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k.name)
		b = append(b, ':')
		switch {
		case k.field >= 0:
			if b, err = appendJSONValue(b, values[k.field]); err != nil {
				return nil, err
			}
		case k.name == core.FieldNameCollectionId:
			b = appendJSONString(b, c.Id)
		default:
			b = appendJSONString(b, c.Name)
		}
	}
	return append(b, '}'), nil
}

// appendJSONValue appends a field's value: the types of the chat
// collections' fields by hand, any other as encoding/json/v2 does.
func appendJSONValue(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case string:
		return appendJSONString(b, v), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case float64:
		// v2 writes an integral float below 1e21 in plain digits.
		if v == math.Trunc(v) && math.Abs(v) < 1e21 && !(v == 0 && math.Signbit(v)) {
			return strconv.AppendFloat(b, v, 'f', -1, 64), nil
		}
	case types.DateTime:
		return appendJSONString(b, v.String()), nil
	}
	// PocketBase's record and response encoding options.
	raw, err := json.Marshal(v, json.Deterministic(true), jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	if err != nil {
		return nil, err
	}
	return append(b, raw...), nil
}

// appendJSONString appends s quoted as encoding/json/v2 quotes it.
func appendJSONString(b []byte, s string) []byte {
	// The only error is invalid UTF-8, which AppendQuote has replaced by
	// U+FFFD as PocketBase's encoding (AllowInvalidUTF8) does too.
	b, _ = jsontext.AppendQuote(b, s)
	return b
}
