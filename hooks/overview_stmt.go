package hooks

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
)

// overviewStatements holds the overview's and unread totals' queries
// prepared on the read pool. PocketBase prepares every statement anew;
// SQLite's parser was a tenth of an overview request's CPU (pprof), its
// query being long. The queries take positional parameters (?1, ?2, …) and
// run on database/sql directly.
type overviewStatements struct {
	mu    sync.Mutex
	db    *sql.DB // the pool the statements were prepared on
	stmts map[string]*sql.Stmt
}

// overviewStatementsKey is where an app's statements live in its Store.
const overviewStatementsKey = "pbchat.overviewStatements"

// queryRead runs a read-only query on app's read pool through a statement
// prepared once per pool, and tells the pool's query log (PocketBase's dev
// mode, tests) about it as dbx would.
func queryRead(app core.App, query string, args ...any) (*sql.Rows, error) {
	pool, ok := app.ConcurrentDB().(*dbx.DB)
	if !ok {
		// A transaction's app, say: its own connection, unprepared.
		return queryUnprepared(app.ConcurrentDB(), query, args)
	}
	s := app.Store().GetOrSet(overviewStatementsKey, func() any {
		return &overviewStatements{stmts: map[string]*sql.Stmt{}}
	}).(*overviewStatements)
	start := time.Now()
	rows, err := s.query(pool.DB(), query, args)
	if pool.QueryLogFunc != nil {
		pool.QueryLogFunc(context.Background(), time.Since(start), query, rows, err)
	}
	return rows, err
}

func (s *overviewStatements) query(db *sql.DB, query string, args []any) (*sql.Rows, error) {
	stmt, err := s.prepared(db, query)
	if err != nil {
		return nil, err
	}
	rows, err := stmt.Query(args...)
	if err == nil {
		return rows, nil
	}
	// A statement of a pool closed meanwhile, say: prepared anew next time;
	// this once, unprepared.
	s.drop(query, stmt)
	return db.Query(query, args...)
}

func (s *overviewStatements) prepared(db *sql.DB, query string) (*sql.Stmt, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db != db {
		for _, stmt := range s.stmts {
			_ = stmt.Close() // of a pool closed since
		}
		s.db, s.stmts = db, map[string]*sql.Stmt{}
	}
	if stmt, ok := s.stmts[query]; ok {
		return stmt, nil
	}
	stmt, err := db.Prepare(query)
	if err != nil {
		return nil, err
	}
	s.stmts[query] = stmt
	return stmt, nil
}

func (s *overviewStatements) drop(query string, stmt *sql.Stmt) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stmts[query] == stmt {
		delete(s.stmts, query)
	}
	_ = stmt.Close()
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
