package hooks

// QueryRead is queryRead, for tests.
var QueryRead = queryRead
