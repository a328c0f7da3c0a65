package hooks

import "github.com/pocketbase/dbx"

// SearchQuery is the statement of GET /api/chat/search that reads the
// candidates, for query plan tests.
func SearchQuery(roomID string, terms []string) (string, dbx.Params) {
	q := buildSearchQuery("u1", roomID, terms)
	return q.sql, q.params
}
