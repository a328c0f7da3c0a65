package migrations

import (
	"fmt"

	"github.com/pocketbase/pocketbase/core"
)

// The search index: plain SQLite tables, not collections. The message hooks
// write the numbers and the pending marks in the message's transaction; the
// full-text rows follow in background batches (hooks/search_index.go).
const (
	// SearchIDsTable numbers the messages for the index: n is the integer
	// the full-text table is keyed on, given once when a message is indexed
	// and kept through its edits. It is ours, not chat_messages' rowid, which
	// a VACUUM may renumber (that table has no INTEGER PRIMARY KEY). n grows
	// with insertion, so newest first is n descending; room lets a search
	// check membership without reading the message; fts says whether
	// SearchTable holds a row at n. A deleted message whose text is still
	// there keeps its number, without message, until that row is removed.
	SearchIDsTable = "_pbchat_search_ids"
	// SearchTable is the FTS5 table: one row per message with text, at
	// rowid n. Contentless (content=''): the text lives in chat_messages
	// and is not stored twice; the route reads it there to mark the match.
	// contentless_delete=1 lets a delete or an edit remove a row by rowid
	// alone, without the old text (which an external-content table needs,
	// and gets wrong if the two ever differ). The trigram tokenizer matches
	// any substring of three characters or more, so Chinese, Japanese and
	// Korean text, which has no spaces between words, is found like any
	// other; case_sensitive 0 folds case (Unicode simple folding).
	SearchTable = "_pbchat_search"
	// SearchPendingTable lists the numbers whose row of SearchTable is to be
	// written, rewritten or removed: the message hooks write it in the
	// message's transaction, and a background batch empties it (hooks/search_index.go).
	SearchPendingTable = "_pbchat_search_pending"
)

const searchMigration = "1764000006_pbchat_search.go"

// createSearchIndex creates the index and indexes the messages already
// there, oldest first (so that n follows creation). A second run, after the
// migration history was cleared, finds the tables and leaves them be.
func createSearchIndex(app core.App) error {
	if app.HasTable(SearchIDsTable) {
		return nil
	}
	statements := []string{
		`CREATE TABLE ` + SearchIDsTable + ` (
			n       INTEGER PRIMARY KEY,
			message TEXT UNIQUE,
			room    TEXT NOT NULL,
			fts     INTEGER NOT NULL DEFAULT 0
		)`,
		`CREATE TABLE ` + SearchPendingTable + ` (n INTEGER PRIMARY KEY)`,
		`CREATE VIRTUAL TABLE ` + SearchTable + ` USING fts5(text, content='', contentless_delete=1, tokenize='trigram case_sensitive 0')`,
		`INSERT INTO ` + SearchIDsTable + ` (message, room, fts)
			SELECT id, room, text != '' FROM ` + Messages + ` ORDER BY created, id`,
		`INSERT INTO ` + SearchTable + ` (rowid, text)
			SELECT i.n, m.text FROM ` + SearchIDsTable + ` i JOIN ` + Messages + ` m ON m.id = i.message
			WHERE m.text != ''`,
	}
	for _, sql := range statements {
		if _, err := app.DB().NewQuery(sql).Execute(); err != nil {
			return fmt.Errorf("pbchat: create the search index: %w", err)
		}
	}
	return nil
}

func dropSearchIndex(app core.App) error {
	for _, table := range []string{SearchTable, SearchPendingTable, SearchIDsTable} {
		if _, err := app.DB().NewQuery(`DROP TABLE IF EXISTS ` + table).Execute(); err != nil {
			return fmt.Errorf("pbchat: drop %s: %w", table, err)
		}
	}
	return nil
}
