package hooks

import (
	"database/sql"
	"errors"
	"fmt"
	"sync"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
)

// statements holds the SQL a chat message runs on every send, prepared once
// per database pool. PocketBase prepares every statement anew (it has no
// statement cache): SQLite's parser was a fifth of a send's CPU, and the
// post limits query alone ~70 µs of it, inside the write transaction that
// serialises every sender. The statements take positional parameters and
// run on database/sql directly (no dbx placeholder rewriting either).
//
// A statement runs in the app's transaction when it has one (prepared on
// the write pool's one connection), else on the read pool. One that fails
// (a database closed and opened again, say) runs once more unprepared and
// is prepared anew: a failed statement wrote nothing.
type statements struct {
	mu sync.Mutex
	// writeDB is the write pool as last seen outside a transaction: a
	// statement for transactions is prepared on it once one has completed
	// (the pool's one connection is the transaction's until then).
	writeDB   *sql.DB
	write     map[string]*sql.Stmt
	preparing map[string]bool
	read      map[string]readStmt
}

type readStmt struct {
	db   *sql.DB
	stmt *sql.Stmt
}

// statementsKey is where an app's statements live in its Store (shared by
// the app's transactions, which are shallow copies of it).
const statementsKey = "pbchat.statements"

func statementsOf(app core.App) *statements {
	return app.Store().GetOrSet(statementsKey, func() any {
		return &statements{write: map[string]*sql.Stmt{}, preparing: map[string]bool{}, read: map[string]readStmt{}}
	}).(*statements)
}

// queryRow runs query with args on app and scans its first row into dest
// (sql.ErrNoRows when there is none).
func queryRow(app core.App, query string, args []any, dest ...any) error {
	return statementsOf(app).queryRow(app, query, args, dest...)
}

// execInTx runs a write with args in app's transaction.
func execInTx(app core.App, query string, args ...any) (sql.Result, error) {
	return statementsOf(app).exec(app, query, args...)
}

func (s *statements) queryRow(app core.App, query string, args []any, dest ...any) error {
	if tx := sqlTxOf(app); tx != nil {
		if stmt := s.writeStmt(query); stmt != nil {
			err := tx.Stmt(stmt).QueryRow(args...).Scan(dest...)
			if err == nil || errors.Is(err, sql.ErrNoRows) {
				return err
			}
			s.dropWrite(query, stmt)
		}
		s.prepareAfter(app, query)
		return tx.QueryRow(query, args...).Scan(dest...)
	}
	db, ok := app.ConcurrentDB().(*dbx.DB)
	if !ok {
		return fmt.Errorf("pbchat: no database/sql pool behind %T", app.ConcurrentDB())
	}
	s.noteWriteDB(app)
	stmt, err := s.readStmt(db.DB(), query)
	if err == nil {
		err = stmt.QueryRow(args...).Scan(dest...)
		if err == nil || errors.Is(err, sql.ErrNoRows) {
			return err
		}
		s.dropRead(query, stmt)
	}
	return db.DB().QueryRow(query, args...).Scan(dest...)
}

func (s *statements) exec(app core.App, query string, args ...any) (sql.Result, error) {
	tx := sqlTxOf(app)
	if tx == nil {
		return nil, fmt.Errorf("pbchat: %q runs in a transaction only", query)
	}
	if stmt := s.writeStmt(query); stmt != nil {
		res, err := tx.Stmt(stmt).Exec(args...)
		if err == nil {
			return res, nil
		}
		s.dropWrite(query, stmt)
	}
	s.prepareAfter(app, query)
	return tx.Exec(query, args...)
}

func (s *statements) writeStmt(query string) *sql.Stmt {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.write[query]
}

func (s *statements) dropWrite(query string, stmt *sql.Stmt) {
	s.mu.Lock()
	if s.write[query] == stmt {
		delete(s.write, query)
	}
	s.mu.Unlock()
	_ = stmt.Close()
}

func (s *statements) dropRead(query string, stmt *sql.Stmt) {
	s.mu.Lock()
	if s.read[query].stmt == stmt {
		delete(s.read, query)
	}
	s.mu.Unlock()
	_ = stmt.Close()
}

func (s *statements) noteWriteDB(app core.App) {
	db, ok := app.NonconcurrentDB().(*dbx.DB)
	if !ok {
		return
	}
	s.mu.Lock()
	if s.writeDB != db.DB() {
		s.writeDB = db.DB()
	}
	s.mu.Unlock()
}

// query runs a read on the read pool db through its prepared statement; a
// failed statement (of a pool closed since, say) runs once more unprepared.
func (s *statements) query(db *sql.DB, query string, args []any) (*sql.Rows, error) {
	stmt, err := s.readStmt(db, query)
	if err == nil {
		rows, err := stmt.Query(args...)
		if err == nil {
			return rows, nil
		}
		s.dropRead(query, stmt)
	}
	return db.Query(query, args...)
}

// readStmt is query prepared on the read pool db (prepared now when it is
// not yet: the pool has connections to spare).
func (s *statements) readStmt(db *sql.DB, query string) (*sql.Stmt, error) {
	s.mu.Lock()
	r, ok := s.read[query]
	s.mu.Unlock()
	if ok && r.db == db {
		return r.stmt, nil
	}
	stmt, err := db.Prepare(query)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.read[query]; ok && r.db == db {
		_ = stmt.Close() // prepared meanwhile by another request
		return r.stmt, nil
	}
	if ok {
		_ = r.stmt.Close() // of a database closed since
	}
	s.read[query] = readStmt{db: db, stmt: stmt}
	return stmt, nil
}

// prepareAfter prepares query on the write pool once app's transaction has
// completed.
func (s *statements) prepareAfter(app core.App, query string) {
	info := app.TxInfo()
	s.mu.Lock()
	db := s.writeDB
	if info == nil || db == nil || s.preparing[query] {
		s.mu.Unlock()
		return
	}
	s.preparing[query] = true
	s.mu.Unlock()
	info.OnComplete(func(error) error {
		stmt, err := db.Prepare(query)
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.preparing, query)
		if err != nil {
			// Most likely a pool closed since (the app bootstrapped again):
			// no more attempts on it until a request shows the new one.
			if s.writeDB == db {
				s.writeDB = nil
			}
			app.Logger().Warn("pbchat: prepare a statement", "error", err)
			return nil
		}
		if old := s.write[query]; old != nil {
			_ = old.Close()
		}
		s.write[query] = stmt
		return nil
	})
}

// sqlTxOf is the database/sql transaction of a transactional app, or nil.
func sqlTxOf(tx core.App) *sql.Tx {
	dbxTx, ok := tx.NonconcurrentDB().(*dbx.Tx)
	if !ok {
		return nil
	}
	builder, ok := dbxTx.Builder.(interface{ Executor() dbx.Executor })
	if !ok {
		return nil
	}
	sqlTx, _ := builder.Executor().(*sql.Tx)
	return sqlTx
}
