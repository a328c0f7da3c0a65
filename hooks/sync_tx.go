package hooks

import (
	"database/sql"
	"errors"
	"fmt"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
)

// syncTx is a sync's read transaction on the read pool. Its statements are
// prepared once per pool (statementsOf, as the send path's) and run in the
// transaction through tx.Stmt: database/sql prepares a statement once per
// connection of the pool, and SQLite no longer parses the sync's long
// queries on every request (a third of a sync's CPU in the reconnect storm).
type syncTx struct {
	app  core.App
	pool *sql.DB
	tx   *sql.Tx
}

// beginSync opens the read transaction of one sync answer.
func beginSync(app core.App) (*syncTx, error) {
	pool, ok := app.ConcurrentDB().(*dbx.DB)
	if !ok {
		return nil, fmt.Errorf("pbchat sync: no database/sql pool behind %T", app.ConcurrentDB())
	}
	tx, err := pool.DB().Begin()
	if err != nil {
		return nil, fmt.Errorf("pbchat sync: begin: %w", err)
	}
	return &syncTx{app: app, pool: pool.DB(), tx: tx}, nil
}

// query runs query in the transaction through its prepared statement. A
// statement that fails (of a database closed and opened again, say) is
// prepared anew next time and the query runs once more unprepared: a
// failed read changed nothing.
func (t *syncTx) query(query string, args ...any) (*sql.Rows, error) {
	s := statementsOf(t.app)
	if stmt, err := s.readStmt(t.pool, query); err == nil {
		rows, err := t.tx.Stmt(stmt).Query(args...)
		if err == nil {
			return rows, nil
		}
		s.dropRead(query, stmt)
	}
	return t.tx.Query(query, args...)
}

// queryRow scans the first row of query into dest (sql.ErrNoRows when
// there is none).
func (t *syncTx) queryRow(query string, args []any, dest ...any) error {
	rows, err := t.query(query, args...)
	if err != nil {
		return err
	}
	if !rows.Next() {
		if err := closeRows(rows); err != nil {
			return err
		}
		return sql.ErrNoRows
	}
	if err := rows.Scan(dest...); err != nil {
		rows.Close()
		return err
	}
	return closeRows(rows)
}

// closeRows closes rows read to their end (or not) and returns the error
// that ended them.
func closeRows(rows *sql.Rows) error {
	return errors.Join(rows.Err(), rows.Close())
}
