package hooks

// ReceiptsQuery is the statement of GET /api/chat/rooms/{id}/receipts, for
// the query plan test.
const ReceiptsQuery = receiptsQuery
