package hooks

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
)

// Sync answers carry up to a thousand records. Loading each as a
// core.Record and encoding it costs ~10 µs a record; SQLite builds the same
// JSON from the row in a fraction of that. recordJSONSQL writes that query
// for a collection whose fields all have a known shape, and the records
// come out as PocketBase's records API shows them to a user (no expand,
// hidden fields left out, keys in PocketBase's sorted order). Any other
// collection is loaded and encoded by PocketBase (loadRecordsJSON's fallback).

// recordJSONSQL returns the query of the records with ids ?1 (a JSON
// list), as rows of id and JSON; or ok=false when a field's type is not
// one of those below.
func recordJSONSQL(collection *core.Collection) (query string, ok bool) {
	if collection.IsAuth() || collection.IsView() {
		return "", false // email visibility, view rows: PocketBase's own way
	}
	type pair struct{ key, expr string }
	pairs := []pair{
		{core.FieldNameCollectionId, quoteSQL(collection.Id)},
		{core.FieldNameCollectionName, quoteSQL(collection.Name)},
	}
	for _, field := range collection.Fields {
		if field.GetHidden() {
			continue
		}
		expr, known := fieldJSONExpr(field)
		if !known {
			return "", false
		}
		pairs = append(pairs, pair{field.GetName(), expr})
	}
	slices.SortFunc(pairs, func(a, b pair) int { return strings.Compare(a.key, b.key) })
	args := make([]string, 0, 2*len(pairs))
	for _, p := range pairs {
		args = append(args, quoteSQL(p.key), p.expr)
	}
	// A row per record: packing them into one value like the log rows
	// (packedLogRow) cost more here, SQLite growing and copying the value
	// of a thousand records a dozen times.
	return `SELECT id, json_object(` + strings.Join(args, ", ") + `) FROM ` +
		quoteIdent(collection.Name) + ` WHERE id IN (SELECT value FROM json_each(?1))`, true
}

// recordQuery is recordJSONSQL's answer for one version of a collection.
type recordQuery struct {
	collection *core.Collection
	sql        string
	ok         bool
}

// recordQueriesKey is where an app's records queries live in its Store: a
// *sync.Map of collection id → recordQuery.
const recordQueriesKey = "pbchat.syncRecordQueries"

// recordJSONSQLOf is recordJSONSQL of collection, written once per version
// of the collection (PocketBase's collection cache hands out a new
// *core.Collection when one changes): writing it was a twentieth of a
// small sync's CPU.
func recordJSONSQLOf(app core.App, collection *core.Collection) (string, bool) {
	cache := app.Store().GetOrSet(recordQueriesKey, func() any { return &sync.Map{} }).(*sync.Map)
	if v, ok := cache.Load(collection.Id); ok && v.(recordQuery).collection == collection {
		return v.(recordQuery).sql, v.(recordQuery).ok
	}
	query, ok := recordJSONSQL(collection)
	cache.Store(collection.Id, recordQuery{collection: collection, sql: query, ok: ok})
	return query, ok
}

// fieldJSONExpr is the SQL of a field's value as PocketBase exports it.
func fieldJSONExpr(field core.Field) (string, bool) {
	col := quoteIdent(field.GetName())
	// Single-valued text-like columns are TEXT NOT NULL DEFAULT '' (TEXT
	// affinity stores numbers as text): the column is the value.
	text := col
	// A multi-valued field holds a JSON array; PocketBase reads a plain
	// non-empty string as a list of one. Most are empty: answered before
	// SQLite parses the JSON three times.
	list := `(CASE WHEN coalesce(` + col + `, '') IN ('', '[]') THEN json_array()` +
		` WHEN json_valid(` + col + `) AND json_type(` + col + `) = 'array' THEN json(` + col + `)` +
		` WHEN coalesce(` + col + `, '') = '' THEN json_array() ELSE json_array(CAST(` + col + ` AS TEXT)) END)`
	switch f := field.(type) {
	case *core.TextField, *core.EmailField, *core.URLField, *core.EditorField, *core.DateField, *core.AutodateField:
		return text, true
	case *core.RelationField:
		return pick(f.IsMultiple(), list, text), true
	case *core.SelectField:
		return pick(f.IsMultiple(), list, text), true
	case *core.FileField:
		return pick(f.IsMultiple(), list, text), true
	case *core.BoolField:
		// cast.ToBool: 1, "1", "t", "T", "true", "TRUE", "True".
		return `(CASE WHEN ` + col + ` IN (1, '1', 't', 'T', 'true', 'TRUE', 'True') THEN json('true') ELSE json('false') END)`, true
	case *core.NumberField:
		return `(coalesce(` + col + `, 0) + 0)`, true
	case *core.JSONField:
		return `(CASE WHEN json_valid(` + col + `) THEN json(` + col + `) ELSE NULL END)`, true
	case *core.GeoPointField:
		// Stored as PocketBase encodes it: {"lon":…,"lat":…}.
		return `(CASE WHEN json_valid(` + col + `) THEN json(` + col + `) ELSE json('{"lon":0,"lat":0}') END)`, true
	}
	return "", false
}

func pick(multiple bool, list, single string) string {
	if multiple {
		return list
	}
	return single
}

func quoteSQL(s string) string   { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// loadRecordsJSON returns the records of collection with the given ids, as
// JSON keyed by id, read through db (the sync's read transaction). Missing
// ids are absent.
func loadRecordsJSON(app core.App, db *syncTx, name string, ids []string) (map[string]rawJSON, error) {
	collection, err := app.FindCachedCollectionByNameOrId(name)
	if err != nil {
		return nil, fmt.Errorf("pbchat sync: collection %s: %w", name, err)
	}
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	out := make(map[string]rawJSON, len(ids))
	if query, ok := recordJSONSQLOf(app, collection); ok {
		rows, err := db.query(query, jsonList(ids))
		if err != nil {
			return nil, fmt.Errorf("pbchat sync: load %s: %w", name, err)
		}
		for rows.Next() {
			var id, raw string
			if err := rows.Scan(&id, &raw); err != nil {
				rows.Close()
				return nil, fmt.Errorf("pbchat sync: load %s: %w", name, err)
			}
			out[id] = rawJSON(raw)
		}
		if err := closeRows(rows); err != nil {
			return nil, fmt.Errorf("pbchat sync: load %s: %w", name, err)
		}
		return out, nil
	}

	rows, err := scanRows(db, `SELECT * FROM `+quoteIdent(collection.Name)+` WHERE id IN (SELECT value FROM json_each(?1))`, jsonList(ids))
	if err != nil {
		return nil, fmt.Errorf("pbchat sync: load %s: %w", name, err)
	}
	for _, row := range rows {
		record, err := recordFromRow(collection, row)
		if err != nil {
			return nil, fmt.Errorf("pbchat sync: load %s: %w", name, err)
		}
		raw, err := json.Marshal(record)
		if err != nil {
			return nil, fmt.Errorf("pbchat sync: encode %s %s: %w", name, record.Id, err)
		}
		out[record.Id] = rawJSON(raw)
	}
	return out, nil
}

// scanRows reads every row of query as column name → value.
func scanRows(db *syncTx, query string, args ...any) ([]dbx.NullStringMap, error) {
	rows, err := db.query(query, args...)
	if err != nil {
		return nil, err
	}
	columns, err := rows.Columns()
	if err != nil {
		rows.Close()
		return nil, err
	}
	var out []dbx.NullStringMap
	values := make([]sql.NullString, len(columns))
	dest := make([]any, len(columns))
	for i := range values {
		dest[i] = &values[i]
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			rows.Close()
			return nil, err
		}
		row := make(dbx.NullStringMap, len(columns))
		for i, name := range columns {
			row[name] = values[i]
		}
		out = append(out, row)
	}
	return out, closeRows(rows)
}

// recordFromRow hydrates a record from a row read in the sync's own read
// transaction, as PocketBase's record queries do.
func recordFromRow(collection *core.Collection, row dbx.NullStringMap) (*core.Record, error) {
	record := core.NewRecord(collection)
	for _, field := range collection.Fields {
		var raw any
		if value, ok := row[field.GetName()]; ok && value.Valid {
			raw = value.String
		}
		value, err := field.PrepareValue(record, raw)
		if err != nil {
			return nil, err
		}
		record.SetRaw(field.GetName(), value)
	}
	if err := record.PostScan(); err != nil {
		return nil, err
	}
	return record, nil
}
