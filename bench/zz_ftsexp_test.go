package bench

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

func TestFTSExp(t *testing.T) {
	for _, v := range []string{"detail=full", "detail=none"} {
	for _, mode := range []string{"insert tx1", "insert tx500", "reindex tx500"} {
		db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "x.db")+"?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
		if err != nil { t.Fatal(err) }
		db.SetMaxOpenConns(1)
		if _, err := db.Exec("CREATE VIRTUAL TABLE f USING fts5(text, content='', contentless_delete=1, "+v+", tokenize='trigram')"); err != nil { t.Fatal(err) }
		tx, _ := db.Begin()
		for i := 0; i < 200000; i++ {
			tx.Exec("INSERT INTO f(rowid, text) VALUES (?, ?)", i+1, fmt.Sprintf("message %d: the quick brown fox jumps over the weekend trip", i))
		}
		tx.Commit()
		const n = 3000
		batch := 500
		if mode == "insert tx1" { batch = 1 }
		start := time.Now()
		for i := 0; i < n; i += batch {
			tx, _ := db.Begin()
			for j := i; j < i+batch; j++ {
				text := fmt.Sprintf("send %d: hello there, how is the weekend trip going?", j)
				if mode == "reindex tx500" {
					if _, err := tx.Exec("DELETE FROM f WHERE rowid = ?", 1000+j*7); err != nil { t.Fatal(err) }
					tx.Exec("INSERT INTO f(rowid, text) VALUES (?, ?)", 1000+j*7, text)
				} else {
					tx.Exec("INSERT INTO f(rowid, text) VALUES (?, ?)", 300000+j, text)
				}
			}
			if err := tx.Commit(); err != nil { t.Fatal(err) }
		}
		t.Logf("%s %-15s %6.1f µs/row", v, mode, float64(time.Since(start).Microseconds())/n)
		db.Close()
	}
	}
}
