package bench

import (
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
)

// BenchmarkSearch: GET /api/chat/search for a user in 200 rooms of a
// database of PBCHAT_BENCH_SEARCH_MESSAGES (default 1,000,000) messages:
// latency for a common and a rare word, the index's size, and the CPU the
// index adds to a send.
//
//	go test ./bench -run '^$' -bench Search -benchtime 1x -timeout 60m -v
//
// Targets: p50 ≤ 10 ms and p99 ≤ 50 ms; at most 0.1 ms CPU per send.
// PBCHAT_BENCH_DATA=DIR reuses the event log benchmark's datasets.
func BenchmarkSearch(b *testing.B) {
	size := envInt("PBCHAT_BENCH_SEARCH_MESSAGES", 1_000_000)
	const (
		rareWord  = "zephyr"
		rareEvery = 10_000
		requests  = 300
		saves     = 300
		rounds    = 16
	)
	root := b.TempDir()
	withDir, withoutDir := filepath.Join(root, "index"), filepath.Join(root, "noindex")
	ds := eventLogDataset(b, size, withDir)

	// The rare word, in the messages before the index is built from them.
	raw := core.NewBaseApp(core.BaseAppConfig{DataDir: withDir})
	if err := raw.Bootstrap(); err != nil {
		b.Fatal(err)
	}
	if err := DropSearchIndex(raw); err != nil {
		b.Fatal(err)
	}
	rare, err := AddRareWord(raw, rareWord, rareEvery)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := raw.NonconcurrentDB().NewQuery("VACUUM").Execute(); err != nil {
		b.Fatal(err)
	}
	before, err := DBBytes(raw)
	if err != nil {
		b.Fatal(err)
	}
	if err := raw.ResetBootstrapState(); err != nil {
		b.Fatal(err)
	}

	// pbchat's start runs the migration that indexes every message.
	start := time.Now()
	a, err := NewApp(withDir, KindPbchat)
	if err != nil {
		b.Fatal(err)
	}
	buildTime := time.Since(start)
	after, err := DBBytes(a.App)
	if err != nil {
		b.Fatal(err)
	}
	indexBytes := SearchIndexBytes(a.App)
	b.Logf("%d messages (%d with %q), database %.0f MiB before the index, %.0f MiB after (+%.1f%%); index tables (dbstat) %.0f MiB = %.1f%% of the database; built in %s at start",
		size, rare, rareWord, mib(before), mib(after), 100*float64(after-before)/float64(before), mib(indexBytes), 100*float64(indexBytes)/float64(after), buildTime.Round(time.Second))

	user := ds.FocusUsers[0]
	tokens, err := a.Tokens([]string{user})
	if err != nil {
		b.Fatal(err)
	}
	token := tokens[user]
	focusRoom := RoomID(FocusRoomRanks(0)[0])
	b.ResetTimer()
	for _, c := range []struct {
		name   string
		params url.Values
	}{
		{"common word", url.Values{"q": {"weekend"}}},
		{"rare word", url.Values{"q": {rareWord}}},
		{"two common words", url.Values{"q": {"weekend photos"}}},
		{"common word, page 10", url.Values{"q": {"weekend"}, "page": {"10"}}},
		{"common word, busiest room", url.Values{"q": {"weekend"}, "room": {focusRoom}}},
		{"rare word, busiest room", url.Values{"q": {rareWord}, "room": {focusRoom}}},
		{"two letters (bounded scan)", url.Values{"q": {"fo"}}},
	} {
		params := c.params
		timing, err := TimeSearch(a, token, params, requests)
		if err != nil {
			b.Logf("%s: %v", c.name, err)
			continue
		}
		b.Logf("  %-28s p50 %6.2f ms  p99 %6.2f ms  (%d items, more: %v; %d requests)", c.name, ms(timing.P50), ms(timing.P99), timing.Items, timing.More, timing.Requests)
	}
	b.StopTimer()

	// CPU per send with and without the index's hooks, on copies of one
	// database, in alternating rounds. (The copy is SQLite's, of the open
	// database: closing the app first would leave its background jobs
	// running on a closed app.)
	with := a
	defer with.Close()
	if err := os.MkdirAll(withoutDir, 0o755); err != nil {
		b.Fatal(err)
	}
	if _, err := with.App.NonconcurrentDB().NewQuery("VACUUM INTO {:path}").Bind(dbx.Params{"path": filepath.Join(withoutDir, "data.db")}).Execute(); err != nil {
		b.Fatal(err)
	}
	without, err := NewApp(withoutDir, KindPbchat)
	if err != nil {
		b.Fatal(err)
	}
	defer without.Close()
	WithoutSearchIndex(without.App)
	cpu := map[string][]float64{}
	var diffs []float64
	for r := 0; r < rounds; r++ {
		s := ds.Senders[r%len(ds.Senders)]
		order := []*App{with, without}
		if r%2 == 1 {
			order = []*App{without, with}
		}
		perMsg := map[*App]time.Duration{}
		for _, app := range order {
			d, err := SaveMessages(app.App, s, saves)
			if err != nil {
				b.Fatal(err)
			}
			perMsg[app] = d
		}
		cpu["with"] = append(cpu["with"], float64(perMsg[with].Nanoseconds())/1000)
		cpu["without"] = append(cpu["without"], float64(perMsg[without].Nanoseconds())/1000)
		diffs = append(diffs, float64((perMsg[with]-perMsg[without]).Nanoseconds())/1000)
	}
	fresh, edited, err := IndexCost(with.App, 5000)
	if err != nil {
		b.Fatal(err)
	}
	added := Median(diffs) + float64(fresh.Nanoseconds())/1000
	b.Logf("send (app.Save, every model hook, no HTTP; CPU of the saving thread), %d rounds of %d messages per side: with the index's hooks %.0f µs/msg, without %.0f µs; the hooks add %.1f µs in the message's transaction (median of the rounds' differences); per round: with %v, without %v",
		rounds, saves, Median(cpu["with"]), Median(cpu["without"]), Median(diffs), rounded(cpu["with"]), rounded(cpu["without"]))
	b.Logf("the background indexer: %.1f µs CPU per new message, %.1f µs per edited one (removal and insertion), in batches of 500", float64(fresh.Nanoseconds())/1000, float64(edited.Nanoseconds())/1000)
	b.Logf("CPU added per send: %.1f µs (target ≤ 100 µs)", added)
	b.ReportMetric(added, "µs-cpu/msg-index")
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }
