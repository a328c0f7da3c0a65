package hooks

import (
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/hook"

	"github.com/pbchat/pbchat/migrations"
)

// SearchIndexHookID is the id of the model hooks (create, update and delete
// of chat_messages) that keep the search index. It is exported for
// benchmarks that measure what the index costs a send by unbinding them; an
// app without them searches an index that misses messages.
const SearchIndexHookID = "pbchat_search_index"

// The index in two parts, both written in the message's transaction:
//
//   - _pbchat_search_ids numbers every message (n) and says whether the
//     full-text table holds its text (fts);
//   - _pbchat_search_pending lists the numbers whose full-text row is to be
//     written, rewritten or removed.
//
// The full-text table itself is written afterwards, by indexPending, a
// batch of pending rows per transaction. An FTS5 write costs about 0.25 ms
// per transaction whatever it holds (its segment and structure pages), so
// one per message would more than double a send's cost; a batch of a
// hundred costs little more than one. Nothing is lost or wrong meanwhile:
// a search reads the pending rows too (their text, from chat_messages), a
// crash leaves them for the next start, and a rolled back write leaves none.
const (
	insertPendingSQL   = `INSERT OR IGNORE INTO ` + migrations.SearchPendingTable + ` (n) VALUES ({:n})`
	findSearchIDSQL    = `SELECT n, fts FROM ` + migrations.SearchIDsTable + ` WHERE message = {:message}`
	deleteSearchIDSQL  = `DELETE FROM ` + migrations.SearchIDsTable + ` WHERE n = {:n}`
	deletePendingSQL   = `DELETE FROM ` + migrations.SearchPendingTable + ` WHERE n = {:n}`
	tombstoneSearchSQL = `UPDATE ` + migrations.SearchIDsTable + ` SET message = NULL WHERE n = {:n}`

	// Every message's two rows, as prepared statements (see statements).
	numberMessageSQL = `INSERT INTO ` + migrations.SearchIDsTable + ` (message, room) VALUES (?, ?)`
	markPendingSQL   = `INSERT OR IGNORE INTO ` + migrations.SearchPendingTable + ` (n) VALUES (?)`

	// What IndexPendingSearch does with a pending row, prepared as well.
	indexTextSQL     = `INSERT INTO ` + migrations.SearchTable + ` (rowid, text) VALUES (?, ?)`
	unindexTextSQL   = `DELETE FROM ` + migrations.SearchTable + ` WHERE rowid = ?`
	markIndexedSQL   = `UPDATE ` + migrations.SearchIDsTable + ` SET fts = 1 WHERE n = ?`
	markUnindexedSQL = `UPDATE ` + migrations.SearchIDsTable + ` SET fts = 0 WHERE n = ?`
	dropNumberSQL    = `DELETE FROM ` + migrations.SearchIDsTable + ` WHERE n = ?`
	donePendingSQL   = `DELETE FROM ` + migrations.SearchPendingTable + ` WHERE n = ?`
)

// searchFlushDelay gathers the messages of a burst into one batch.
const searchFlushDelay = 50 * time.Millisecond

// searchIndexBatch is the most pending rows indexed in one transaction.
const searchIndexBatch = 500

// searchIndexer writes the pending rows of one app in the background.
type searchIndexer struct {
	app     core.App
	running atomic.Bool
	dirty   atomic.Bool
	mu      sync.Mutex // guards closed; held while a batch is written
	closed  bool
}

// bindSearchIndex keeps the search index in each message write's
// transaction: a write that rolls back (a refused batch, a failed hook)
// leaves no index row, and a committed one is searchable at once.
func bindSearchIndex(app core.App) {
	indexer := &searchIndexer{app: app}
	app.OnRecordCreate(migrations.Messages).Bind(&hook.Handler[*core.RecordEvent]{Id: SearchIndexHookID, Func: searchIndexCreated})
	app.OnRecordUpdate(migrations.Messages).Bind(&hook.Handler[*core.RecordEvent]{Id: SearchIndexHookID, Func: searchIndexUpdated})
	app.OnRecordDelete(migrations.Messages).Bind(&hook.Handler[*core.RecordEvent]{Id: SearchIndexHookID, Func: searchIndexDeleted})
	kick := func(e *core.RecordEvent) error {
		indexer.kick()
		return e.Next()
	}
	app.OnRecordAfterCreateSuccess(migrations.Messages).BindFunc(kick)
	app.OnRecordAfterUpdateSuccess(migrations.Messages).BindFunc(kick)
	app.OnRecordAfterDeleteSuccess(migrations.Messages).BindFunc(kick)
	// What a crash left pending.
	app.OnServe().BindFunc(func(e *core.ServeEvent) error {
		indexer.kick()
		return e.Next()
	})
	app.OnTerminate().BindFunc(func(e *core.TerminateEvent) error {
		indexer.close()
		return e.Next()
	})
}

func searchIndexCreated(e *core.RecordEvent) error {
	return inTransaction(e, func(tx core.App) error {
		if err := e.Next(); err != nil {
			return err
		}
		res, err := execInTx(tx, numberMessageSQL, e.Record.Id, e.Record.GetString("room"))
		if err != nil {
			return fmt.Errorf("pbchat search index: number message %s: %w", e.Record.Id, err)
		}
		n, err := res.LastInsertId()
		if err != nil {
			return fmt.Errorf("pbchat search index: number of message %s: %w", e.Record.Id, err)
		}
		if e.Record.GetString("text") == "" {
			return nil // media only: a number, nothing to index
		}
		return markPending(tx, n, e.Record.Id)
	})
}

// searchIndexUpdated marks a message whose text changed for reindexing;
// other updates (a thread's reply count, say) cost nothing here. The
// message keeps its number: an edit does not make it newer.
func searchIndexUpdated(e *core.RecordEvent) error {
	if e.Record.GetString("text") == e.Record.Original().GetString("text") {
		return e.Next()
	}
	return inTransaction(e, func(tx core.App) error {
		if err := e.Next(); err != nil {
			return err
		}
		n, _, found, err := searchNumber(tx, e.Record.Id)
		if err != nil || !found {
			return err
		}
		return markPending(tx, n, e.Record.Id)
	})
}

// searchIndexDeleted removes a deleted message's number, or, when the
// full-text table holds its text, leaves it as a tombstone (no message)
// pending the removal of that text.
func searchIndexDeleted(e *core.RecordEvent) error {
	return inTransaction(e, func(tx core.App) error {
		if err := e.Next(); err != nil {
			return err
		}
		n, fts, found, err := searchNumber(tx, e.Record.Id)
		if err != nil || !found {
			return err
		}
		statements := []string{deleteSearchIDSQL, deletePendingSQL}
		if fts {
			statements = []string{tombstoneSearchSQL, insertPendingSQL}
		}
		for _, statement := range statements {
			if _, err := tx.NonconcurrentDB().NewQuery(statement).Bind(dbx.Params{"n": n}).Execute(); err != nil {
				return fmt.Errorf("pbchat search index: unindex message %s: %w", e.Record.Id, err)
			}
		}
		return nil
	})
}

func markPending(tx core.App, n int64, messageID string) error {
	if _, err := execInTx(tx, markPendingSQL, n); err != nil {
		return fmt.Errorf("pbchat search index: message %s pending: %w", messageID, err)
	}
	return nil
}

// searchNumber is the message's number in the index and whether the
// full-text table holds its text; found is false for a message without one.
func searchNumber(tx core.App, messageID string) (n int64, fts, found bool, err error) {
	var row struct {
		N   int64 `db:"n"`
		FTS bool  `db:"fts"`
	}
	err = tx.NonconcurrentDB().NewQuery(findSearchIDSQL).Bind(dbx.Params{"message": messageID}).One(&row)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, false, nil
	}
	if err != nil {
		return 0, false, false, fmt.Errorf("pbchat search index: number of message %s: %w", messageID, err)
	}
	return row.N, row.FTS, true, nil
}

// kick starts writing the pending rows, unless a writer is already at it
// (it then goes round once more).
func (x *searchIndexer) kick() {
	x.dirty.Store(true)
	if !x.running.CompareAndSwap(false, true) {
		return
	}
	go x.run()
}

func (x *searchIndexer) run() {
	for {
		time.Sleep(searchFlushDelay)
		x.dirty.Store(false)
		for {
			n, err := x.batch()
			if err != nil {
				x.app.Logger().Error("pbchat: search index", "error", err)
				break
			}
			if n < searchIndexBatch {
				break
			}
		}
		x.running.Store(false)
		// A kick that came after the last batch began found us running.
		if !x.dirty.Load() || !x.running.CompareAndSwap(false, true) {
			return
		}
	}
}

// batch indexes one batch, unless the app is shutting down.
func (x *searchIndexer) batch() (int, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed || !x.app.IsBootstrapped() || !x.app.HasTable(migrations.SearchPendingTable) {
		return 0, nil // shutting down, or before the migration (which indexes everything)
	}
	return IndexPendingSearch(x.app, searchIndexBatch)
}

// close waits for a batch being written and stops further ones.
func (x *searchIndexer) close() {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.closed = true
}

// indexStep is one statement of indexing a pending row, with its arguments.
type indexStep struct {
	query string
	args  []any
}

// IndexPendingSearch writes up to limit pending rows of the search index
// into its full-text table, in one transaction, and returns how many it
// wrote. pbchat calls it in the background after message writes; it is
// exported for benchmarks and tools that want the work done now.
func IndexPendingSearch(app core.App, limit int) (int, error) {
	var done int
	err := app.RunInTransaction(func(tx core.App) error {
		var rows []struct {
			N       int64          `db:"n"`
			Message sql.NullString `db:"message"`
			FTS     bool           `db:"fts"`
			Text    sql.NullString `db:"text"`
		}
		err := tx.NonconcurrentDB().NewQuery(`SELECT p.n AS n, i.message AS message, coalesce(i.fts, 0) AS fts, m.text AS text
			FROM ` + migrations.SearchPendingTable + ` p
			LEFT JOIN ` + migrations.SearchIDsTable + ` i ON i.n = p.n
			LEFT JOIN ` + migrations.Messages + ` m ON m.id = i.message
			ORDER BY p.n LIMIT {:limit}`).Bind(dbx.Params{"limit": limit}).All(&rows)
		if err != nil {
			return fmt.Errorf("read the pending rows: %w", err)
		}
		for _, row := range rows {
			var steps []indexStep
			if row.FTS {
				steps = append(steps, indexStep{unindexTextSQL, []any{row.N}})
			}
			switch {
			case !row.Message.Valid:
				steps = append(steps, indexStep{dropNumberSQL, []any{row.N}}) // a tombstone
			case row.Text.String != "":
				steps = append(steps, indexStep{indexTextSQL, []any{row.N, row.Text.String}}, indexStep{markIndexedSQL, []any{row.N}})
			case row.FTS:
				steps = append(steps, indexStep{markUnindexedSQL, []any{row.N}})
			}
			steps = append(steps, indexStep{donePendingSQL, []any{row.N}})
			for _, step := range steps {
				if _, err := execInTx(tx, step.query, step.args...); err != nil {
					return fmt.Errorf("index row %d: %w", row.N, err)
				}
			}
		}
		done = len(rows)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("pbchat search index: %w", err)
	}
	return done, nil
}
