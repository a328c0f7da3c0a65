package hooks

import "github.com/pocketbase/dbx"

// SyncQueries are the statements of GET /api/chat/sync with parameters of
// the right shape, for query plan tests.
var SyncQueries = map[string]struct {
	SQL    string
	Params dbx.Params
}{
	"joins":     {joinsSQL, dbx.Params{"user": "u1"}},
	"deletions": {deletionsSQL, dbx.Params{"rooms": `["r1","r2"]`}},
	"events": {eventsSQL, dbx.Params{
		"windows": `[["r1",10],["r2",20],["r3",0]]`,
		"extra":   `[5,7]`,
		"cap":     100,
		"head":    1000,
		"limit":   101,
	}},
}

// RecordJSONSQL is recordJSONSQL.
var RecordJSONSQL = recordJSONSQL
