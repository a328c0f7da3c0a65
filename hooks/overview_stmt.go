package hooks

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
)

// queryRead runs a read-only query on app's read pool through a statement
// prepared once per pool (statementsOf: the overview's and unread totals'
// queries are long; SQLite's parser was a tenth of an overview request's
// CPU), and tells the pool's query log (PocketBase's dev mode, tests) about
// it as dbx would. Inside a transaction's app it runs on the transaction's
// connection, unprepared.
func queryRead(app core.App, query string, args ...any) (*sql.Rows, error) {
	pool, ok := app.ConcurrentDB().(*dbx.DB)
	if !ok {
		return queryUnprepared(app.ConcurrentDB(), query, args)
	}
	start := time.Now()
	rows, err := statementsOf(app).query(pool.DB(), query, args)
	if pool.QueryLogFunc != nil {
		pool.QueryLogFunc(context.Background(), time.Since(start), query, rows, err)
	}
	return rows, err
}

// queryUnprepared runs query on the database/sql executor behind builder.
func queryUnprepared(builder dbx.Builder, query string, args []any) (*sql.Rows, error) {
	if tx, ok := builder.(*dbx.Tx); ok {
		builder = tx.Builder
	}
	if b, ok := builder.(interface{ Executor() dbx.Executor }); ok {
		if q, ok := b.Executor().(interface {
			Query(string, ...any) (*sql.Rows, error)
		}); ok {
			return q.Query(query, args...)
		}
	}
	return nil, fmt.Errorf("pbchat: no database/sql executor behind %T", builder)
}
