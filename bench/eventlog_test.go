package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"testing"
	"time"
)

// The event log's two targets, measured side by side in one run:
//
//	go test ./bench -run '^$' -bench EventLog -benchtime 1x -timeout 60m -v
//
// PBCHAT_BENCH_SEND_MESSAGES (default 100000) and PBCHAT_BENCH_SYNC_MESSAGES
// (default 1000000) set the datasets' sizes; PBCHAT_BENCH_DATA=DIR keeps
// generated datasets for later runs.

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// eventLogDataset writes (or copies from PBCHAT_BENCH_DATA) a dataset of
// size messages with a filled event log into each of dirs.
func eventLogDataset(b *testing.B, size int, dirs ...string) *Dataset {
	b.Helper()
	cache := os.Getenv("PBCHAT_BENCH_DATA")
	src := filepath.Join(b.TempDir(), "src")
	if cache != "" {
		src = filepath.Join(cache, "eventlog-"+strconv.Itoa(size))
	}
	var ds Dataset
	if raw, err := os.ReadFile(filepath.Join(src, "dataset.json")); err == nil && json.Unmarshal(raw, &ds) == nil {
		b.Logf("reusing %s", src)
	} else {
		_ = os.RemoveAll(src)
		schema, err := NewSchemaApp(src)
		if err != nil {
			b.Fatal(err)
		}
		generated, err := GenerateDataset(schema, size, 42, func(s string) { b.Log(s) })
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		rows, err := FillEventLog(schema)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := sqlDB(schema).Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
			b.Fatal(err)
		}
		b.Logf("dataset: %d messages in %s, event log: %d rows in %s", size, generated.GenTime.Round(time.Second), rows, time.Since(start).Round(time.Second))
		if err := schema.ResetBootstrapState(); err != nil {
			b.Fatal(err)
		}
		ds = *generated
		raw, _ := json.Marshal(ds)
		if err := os.WriteFile(filepath.Join(src, "dataset.json"), raw, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	for _, dir := range dirs {
		if err := CopyDir(src, dir); err != nil {
			b.Fatal(err)
		}
		_ = os.Remove(filepath.Join(dir, "dataset.json"))
	}
	return &ds
}

// BenchmarkEventLogSend: CPU per message sent (the server and the in-process
// HTTP client), pbchat with the event log vs the same app with the log's
// hooks unbound, in alternating rounds on copies of one database.
// Target: the log adds at most 10%.
func BenchmarkEventLogSend(b *testing.B) {
	size := envInt("PBCHAT_BENCH_SEND_MESSAGES", 100_000)
	const (
		concurrency = 16
		rounds      = 10
		round       = 2 * time.Second
	)
	root := b.TempDir()
	withDir, withoutDir := filepath.Join(root, "log"), filepath.Join(root, "nolog")
	ds := eventLogDataset(b, size, withDir, withoutDir)

	withLog, err := NewApp(withDir, KindPbchat)
	if err != nil {
		b.Fatal(err)
	}
	defer withLog.Close()
	withoutLog, err := NewApp(withoutDir, KindPbchat)
	if err != nil {
		b.Fatal(err)
	}
	defer withoutLog.Close()
	WithoutEventLog(withoutLog.App)

	variants := map[string]*sender{}
	for name, app := range map[string]*App{"with log": withLog, "without log": withoutLog} {
		tokens, err := app.Tokens(senderUsers(ds.Senders))
		if err != nil {
			b.Fatal(err)
		}
		v := &sender{variant: name, client: HTTPClient(concurrency), url: app.URL + "/api/collections/chat_messages/records", senders: ds.Senders,
			bodies: func(w, i int) []byte {
				s := ds.Senders[w%len(ds.Senders)]
				body, _ := json.Marshal(map[string]string{"room": s.Room, "text": fmt.Sprintf("send %d/%d: hello there, how is it going?", w, i)})
				return body
			}}
		for _, s := range ds.Senders {
			v.tokens = append(v.tokens, tokens[s.User])
		}
		variants[name] = v
	}
	order := []string{"with log", "without log"}

	logRows := func() int {
		var n int
		_ = sqlDB(withLog.App).QueryRow("SELECT count(*) FROM _pbchat_events").Scan(&n)
		return n
	}
	rowsBefore := logRows()
	b.ResetTimer()
	cpu := map[string][]float64{}
	rate := map[string][]float64{}
	sent := map[string]int{}
	for r := 0; r < rounds; r++ {
		for k := range order {
			name := order[(r+k)%len(order)]
			v := variants[name]
			if r == 0 {
				v.run(concurrency, round/3) // warm-up
			}
			res := v.run(concurrency, round)
			if res.errors > 0 {
				b.Fatalf("%s: %d errors, first: %s", name, res.errors, res.firstErr)
			}
			cpu[name] = append(cpu[name], float64(res.cpu.Microseconds())/float64(max(res.n, 1)))
			rate[name] = append(rate[name], float64(res.n)/res.elapsed.Seconds())
			sent[name] += res.n
		}
	}
	b.StopTimer()
	if got := logRows() - rowsBefore; got < sent["with log"] {
		b.Fatalf("the log holds %d new rows for %d messages sent", got, sent["with log"])
	}

	with, without := Median(cpu["with log"]), Median(cpu["without log"])
	// Other processes' load drifts over a run: each round's two sides ran
	// back to back, so the overhead is the median of the rounds' ratios.
	ratios := make([]float64, rounds)
	for r := range ratios {
		ratios[r] = cpu["with log"][r] / cpu["without log"][r]
	}
	overhead := (Median(ratios) - 1) * 100
	b.Logf("send, %d messages in the database, concurrency %d, %d rounds of %s per side (medians):", size, concurrency, rounds, round)
	b.Logf("  with the event log:    %6.0f µs CPU/msg  %5.0f msg/s", with, Median(rate["with log"]))
	b.Logf("  without the event log: %6.0f µs CPU/msg  %5.0f msg/s", without, Median(rate["without log"]))
	b.Logf("  the log adds %.1f%% CPU per message (median of the rounds' ratios; target ≤ 10%%); per round: with %v, without %v", overhead, rounded(cpu["with log"]), rounded(cpu["without log"]))
	b.ReportMetric(with, "µs-cpu/msg-log")
	b.ReportMetric(without, "µs-cpu/msg-nolog")
	b.ReportMetric(overhead, "%-log-overhead")
}

// startCPUProfile writes a CPU profile to path (when set and on) until the
// returned func is called: the measured requests alone, not the dataset's
// copy or the app's start.
func startCPUProfile(b *testing.B, path string, on bool) (stop func()) {
	b.Helper()
	if path == "" || !on {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			b.Error(err)
		}
	}
}

func rounded(v []float64) []int {
	out := make([]int, len(v))
	for i, x := range v {
		out[i] = int(x + 0.5)
	}
	return out
}

// BenchmarkEventLogSync: a focus user in 200 rooms catches up 1,000 missed
// events over HTTP, in one request (limit=1000) and in pages of 100.
// Target: p50 ≤ 10 ms for the catch-up at 1M messages.
func BenchmarkEventLogSync(b *testing.B) {
	size := envInt("PBCHAT_BENCH_SYNC_MESSAGES", 1_000_000)
	const (
		missed   = 1000
		requests = 200
	)
	dir := filepath.Join(b.TempDir(), "sync")
	ds := eventLogDataset(b, size, dir)
	app, err := NewApp(dir, KindPbchat)
	if err != nil {
		b.Fatal(err)
	}
	defer app.Close()

	user := ds.FocusUsers[0]
	var rooms []string
	for _, rank := range FocusRoomRanks(0) {
		rooms = append(rooms, RoomID(rank))
	}
	since, err := SyncSince(app, rooms, missed)
	if err != nil {
		b.Fatal(err)
	}
	var logRows int
	_ = sqlDB(app.App).QueryRow("SELECT count(*) FROM _pbchat_events").Scan(&logRows)

	// Warm-up: the page caches of the connections a request may land on.
	if _, err := TimeSync(app, user, since, 1000, 20); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for _, limit := range []int{1000, 100} {
		stop := startCPUProfile(b, os.Getenv("PBCHAT_SYNC_PROFILE"), limit == 1000)
		timing, err := TimeSync(app, user, since, limit, requests)
		stop()
		if err != nil {
			b.Fatal(err)
		}
		if timing.Events != missed {
			b.Fatalf("caught up %d events, want %d", timing.Events, missed)
		}
		b.Logf("sync, %d messages, %d log rows, a user in %d rooms, %d missed events, limit %d: %d request(s) per catch-up, p50 %.2f ms, p99 %.2f ms, CPU %.2f ms per catch-up (%d catch-ups)",
			size, logRows, len(rooms), timing.Events, limit, timing.Pages, ms(timing.P50), ms(timing.P99), ms(timing.CPUPerReq), requests)
		b.ReportMetric(ms(timing.P50), fmt.Sprintf("ms-p50-limit%d", limit))
		b.ReportMetric(ms(timing.P99), fmt.Sprintf("ms-p99-limit%d", limit))
	}
}
