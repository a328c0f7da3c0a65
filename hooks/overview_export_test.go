package hooks

import "github.com/pocketbase/pocketbase/core"

// QueryRead is queryRead, for tests.
var QueryRead = queryRead

// OverviewRecordJSON is record encoded as the overview encodes its rows'
// values.
func OverviewRecordJSON(record *core.Record) ([]byte, error) {
	c := record.Collection()
	values := make([]any, len(c.Fields))
	for i, f := range c.Fields {
		values[i] = record.Get(f.GetName())
	}
	return appendRecordJSON(nil, c, recordKeys(c), values)
}
