package bench

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"syscall"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"github.com/pbchat/pbchat/hooks"
	"github.com/pbchat/pbchat/migrations"
)

// searchMigrationFile is the migration that creates and fills the index.
const searchMigrationFile = "1764000006_pbchat_search.go"

// WithoutSearchIndex unbinds the search index's hooks: the baseline of what
// the index costs a send. Search is wrong on such an app.
func WithoutSearchIndex(app core.App) {
	app.OnRecordCreate().Unbind(hooks.SearchIndexHookID)
	app.OnRecordUpdate().Unbind(hooks.SearchIndexHookID)
	app.OnRecordDelete().Unbind(hooks.SearchIndexHookID)
}

// AddRareWord appends word to the text of every every-th message (straight
// in the table, before the index is built) and returns how many it changed.
func AddRareWord(app core.App, word string, every int) (int64, error) {
	res, err := app.NonconcurrentDB().NewQuery(`UPDATE chat_messages SET text = text || ' ' || {:word} WHERE rowid % {:every} = 7`).
		Bind(dbx.Params{"word": word, "every": every}).Execute()
	if err != nil {
		return 0, fmt.Errorf("add %q: %w", word, err)
	}
	return res.RowsAffected()
}

// DropSearchIndex removes the index and its migration's row: the next start
// of pbchat builds it anew from the messages.
func DropSearchIndex(app core.App) error {
	for _, sql := range []string{"DROP TABLE IF EXISTS " + migrations.SearchTable, "DROP TABLE IF EXISTS " + migrations.SearchIDsTable, "DROP TABLE IF EXISTS " + migrations.SearchPendingTable} {
		if _, err := app.NonconcurrentDB().NewQuery(sql).Execute(); err != nil {
			return fmt.Errorf("drop the search index: %w", err)
		}
	}
	if app.HasTable("_migrations") {
		if _, err := app.NonconcurrentDB().Delete("_migrations", dbx.HashExp{"file": searchMigrationFile}).Execute(); err != nil {
			return fmt.Errorf("forget the search migration: %w", err)
		}
	}
	return nil
}

// DBBytes is the database file's size in pages.
func DBBytes(app core.App) (int64, error) {
	var pages, size int64
	if err := app.NonconcurrentDB().NewQuery("PRAGMA page_count").Row(&pages); err != nil {
		return 0, err
	}
	if err := app.NonconcurrentDB().NewQuery("PRAGMA page_size").Row(&size); err != nil {
		return 0, err
	}
	return pages * size, nil
}

// SearchIndexBytes is the size of the index's tables and their shadow
// tables (SQLite's dbstat), or -1 when dbstat is not compiled in.
func SearchIndexBytes(app core.App) int64 {
	var n int64
	err := app.NonconcurrentDB().NewQuery(`SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name LIKE '\_pbchat\_search%' ESCAPE '\'
		OR name IN (SELECT name FROM sqlite_master WHERE tbl_name LIKE '\_pbchat\_search%' ESCAPE '\')`).Row(&n)
	if err != nil {
		return -1
	}
	return n
}

// SearchTiming is the latency of one search, over requests.
type SearchTiming struct {
	Requests int
	Items    int  // on the first page
	More     bool // a next page exists
	P50, P99 time.Duration
}

// TimeSearch runs the search n times over HTTP as token (after a few
// unmeasured ones) and reports its latency.
func TimeSearch(a *App, token string, params url.Values, n int) (SearchTiming, error) {
	client := HTTPClient(1)
	target := a.URL + "/api/chat/search?" + params.Encode()
	var answer struct {
		HasMore bool  `json:"hasMore"`
		Items   []any `json:"items"`
	}
	for i := 0; i < 5; i++ {
		if err := GetJSON(client, target, token, &answer); err != nil {
			return SearchTiming{}, err
		}
	}
	lats := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		t0 := time.Now()
		status, _, err := Call(context.Background(), client, http.MethodGet, target, token, nil)
		if err != nil || status != http.StatusOK {
			return SearchTiming{}, fmt.Errorf("search %s: %d %v", params.Encode(), status, err)
		}
		lats = append(lats, time.Since(t0))
	}
	slices.Sort(lats)
	return SearchTiming{Requests: n, Items: len(answer.Items), More: answer.HasMore, P50: Percentile(lats, 50), P99: Percentile(lats, 99)}, nil
}

// threadCPU is the calling thread's user+system CPU time (Linux
// RUSAGE_THREAD): with the goroutine locked to its thread, the work it does
// itself, not that of the app's background goroutines (the search indexer,
// the notification worker) which a process-wide figure would mix in.
func threadCPU() time.Duration {
	const rusageThread = 1
	var usage syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &usage); err != nil {
		return 0
	}
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano())
}

// SaveMessages saves n messages through app.Save (every model hook, no
// HTTP) as sender and returns the CPU time per message of the saving
// thread alone (the search index's background batches are measured by
// IndexCost).
func SaveMessages(app core.App, s Sender, n int) (time.Duration, error) {
	collection, err := app.FindCollectionByNameOrId(migrations.Messages)
	if err != nil {
		return 0, err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu0 := threadCPU()
	for i := 0; i < n; i++ {
		record := core.NewRecord(collection)
		record.Set("room", s.Room)
		record.Set("user", s.User)
		record.Set("text", fmt.Sprintf("send %d: hello there, how is the weekend trip going?", i))
		if err := app.Save(record); err != nil {
			return 0, fmt.Errorf("save message: %w", err)
		}
	}
	return (threadCPU() - cpu0) / time.Duration(n), nil
}

// IndexCost returns the CPU time per row of the search index's background
// batches (IndexPendingSearch, batches of 500) for the newest n messages
// with text: as new messages (their full-text rows removed first, not
// measured) and as edited ones (a removal and an insertion each).
func IndexCost(app core.App, n int) (fresh, edited time.Duration, err error) {
	db := app.NonconcurrentDB()
	var newest []int64
	err = db.NewQuery(`SELECT n FROM ` + migrations.SearchIDsTable + ` WHERE fts ORDER BY n DESC LIMIT {:n}`).Bind(dbx.Params{"n": n}).Column(&newest)
	if err != nil {
		return 0, 0, err
	}
	run := func() (time.Duration, error) {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		cpu0, done := threadCPU(), 0
		for {
			k, err := hooks.IndexPendingSearch(app, 500)
			if err != nil {
				return 0, err
			}
			if k == 0 {
				return (threadCPU() - cpu0) / time.Duration(max(done, 1)), nil
			}
			done += k
		}
	}
	// As new: without their full-text rows, pending.
	err = app.RunInTransaction(func(tx core.App) error {
		for _, k := range newest {
			if _, err := tx.NonconcurrentDB().NewQuery(`DELETE FROM ` + migrations.SearchTable + ` WHERE rowid = {:n}`).Bind(dbx.Params{"n": k}).Execute(); err != nil {
				return err
			}
			if _, err := tx.NonconcurrentDB().NewQuery(`UPDATE ` + migrations.SearchIDsTable + ` SET fts = 0 WHERE n = {:n}`).Bind(dbx.Params{"n": k}).Execute(); err != nil {
				return err
			}
			if _, err := tx.NonconcurrentDB().NewQuery(`INSERT OR IGNORE INTO ` + migrations.SearchPendingTable + ` (n) VALUES ({:n})`).Bind(dbx.Params{"n": k}).Execute(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	if fresh, err = run(); err != nil {
		return 0, 0, err
	}
	// As edited: with their rows.
	for _, k := range newest {
		if _, err := db.NewQuery(`INSERT OR IGNORE INTO ` + migrations.SearchPendingTable + ` (n) VALUES ({:n})`).Bind(dbx.Params{"n": k}).Execute(); err != nil {
			return 0, 0, err
		}
	}
	if edited, err = run(); err != nil {
		return 0, 0, err
	}
	return fresh, edited, nil
}
