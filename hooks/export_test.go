package hooks

// SyncQueries are the statements of GET /api/chat/sync with arguments of
// the right shape, for query plan tests.
var SyncQueries = map[string]struct {
	SQL  string
	Args []any
}{
	"joins":     {joinsSQL, []any{"u1"}},
	"scope":     {scopeSQL, []any{"u1"}},
	"deletions": {deletionsSQL, []any{`["r1","r2"]`}},
	// windows, extra, cap, head, limit
	"events": {eventsSQL, []any{`[["r1",10],["r2",20],["r3",0]]`, `[5,7]`, 100, 1000, 101}},
}

// RecordJSONSQL is recordJSONSQL.
var RecordJSONSQL = recordJSONSQL
