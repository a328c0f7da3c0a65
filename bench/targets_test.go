package bench

import (
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"
)

func msd(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }

// sampleResults are the figures of the round-one run in BENCHMARKS.md
// (2 cores, 1M messages, 10,000 clients).
func sampleResults() *Results {
	size := func(n int, pb, hand, floor float64, overview, unread, history float64) SizeResults {
		s := SizeResults{Dataset: &Dataset{Messages: n, Rooms: 10000, FocusUnread: []int{5}}}
		for _, c := range []int{1, 16, 64} {
			f := float64(c) / 64
			s.Send = append(s.Send,
				SendResult{Concurrency: c, Variant: SendPbchat, PerSecond: pb * (0.6 + 0.4*f), CPUPerMsg: 1329 * time.Microsecond},
				SendResult{Concurrency: c, Variant: SendHand, PerSecond: hand * (0.6 + 0.4*f), CPUPerMsg: 1448 * time.Microsecond},
				SendResult{Concurrency: c, Variant: SendFloor, PerSecond: floor, CPUPerMsg: 150 * time.Microsecond})
		}
		s.Read = []ReadResult{
			{What: "history", Side: "pbchat", P50: msd(history), P99: msd(2 * history)},
			{What: "history", Side: "stock PocketBase (same rules)", P50: msd(history), P99: msd(2 * history)},
			{What: "overview", Side: "pbchat", P50: msd(overview), P99: msd(1.5 * overview)},
			{What: "overview", Side: SideView, P50: msd(9.57), P99: msd(14.3)},
			{What: "unread", Side: "pbchat", P50: msd(unread), P99: msd(1.8 * unread)},
			{What: "unread", Side: SideView, P50: msd(8.5), P99: msd(13.7)},
		}
		return s
	}
	r := &Results{Machine: Machine{CPUs: 2}}
	r.Sizes = []SizeResults{
		size(10_000, 1338, 1100, 5900, 6.65, 2.61, 7.5),
		size(100_000, 1639, 1283, 7301, 7.57, 3.02, 6.98),
		size(1_000_000, 1355, 1290, 5970, 7.12, 3.46, 7.09),
	}
	for _, n := range []int{1000, 5000, 10000} {
		for _, st := range []struct {
			style          string
			rss, big, smal float64
		}{{StyleStock, 45, 300 * float64(n) / 1000, 300 * float64(n) / 1000}, {StyleRoomTopics, 46.4, 26.1, 2.3}, {StyleStockPbchat, 47.3, 25.9, 2.4}} {
			x := &RealtimeResult{Config: RealtimeConfig{Clients: n, Style: st.style, BigRoom: 1000, SmallRoom: 50}, Connected: n, IdleRSSPer1k: st.rss}
			x.Big = FanoutResult{Members: 1000, CPUPerMessage: msd(st.big), CPUPerDelivery: msd(st.big) / 1000, DeliveryP99: msd(30)}
			x.Small = FanoutResult{Members: 50, CPUPerMessage: msd(st.smal), CPUPerDelivery: msd(st.smal) / 50}
			r.Realtime = append(r.Realtime, x)
		}
	}
	return r
}

// metResults meet every target of issue 15.
func metResults() *Results {
	r := sampleResults()
	last := &r.Sizes[len(r.Sizes)-1]
	for i := range last.Send {
		if last.Send[i].Variant == SendPbchat {
			last.Send[i].PerSecond = 3100
		}
	}
	for i := range last.Read {
		if last.Read[i].Side == "pbchat" {
			last.Read[i].P50 = map[string]time.Duration{"history": msd(4.2), "overview": msd(2.5), "unread": msd(1.1)}[last.Read[i].What]
		}
	}
	for _, x := range r.Realtime {
		if x.Config.Style != StyleStock {
			x.IdleRSSPer1k = 20
			x.Big.CPUPerDelivery = 8 * time.Microsecond
		}
	}
	r.Capacity = &CapacityFigures{
		Single:  &CapacityRun{Tried: 19_500, Held: 19_500},
		Cluster: &CapacityRun{Tried: 50_000, Held: 50_000, Nodes: 3, BigRoomP50: msd(40), BigRoomP99: msd(90)},
	}
	return r
}

func TestTargets(t *testing.T) {
	const yes, no, none = "yes", "no", "not measured"
	cases := []struct {
		name   string
		res    func() *Results
		states []string       // send, overview, unread, history, memory, CPU per event, one process, cluster
		cells  map[int]string // row → part of its "met" cell
		names  map[int]string // row → part of its name
		gots   map[int]string // row → part of its measured cell
	}{
		{
			name:   "round one's figures miss every measured target",
			res:    sampleResults,
			states: []string{no, no, no, no, no, no, none, none},
			cells: map[int]string{
				0: "55% short", 1: "2.4× the target", 2: "73% over", 3: "42% over",
				4: "2.0× the target", 5: "2.6× the target", 6: "not measured in this run (the fan-out scenario went up to 10000 clients)", 7: "not measured in this run",
			},
			gots: map[int]string{0: "1355 msg/s (hand-written rule 1290, SQLite floor 5970)", 1: "7.12 ms (hand-written view 9.57 ms)", 4: "pbchat room topics 47.5 KiB",
				5: "pbchat room topics 26 µs (marginal 25 µs)"},
		},
		{
			name:   "every target met",
			res:    metResults,
			states: []string{yes, yes, yes, yes, yes, yes, yes, yes},
			gots:   map[int]string{7: "50000 of 50000 on 3 nodes; delivery p50 40.0 / p99 90.0 ms"},
		},
		{
			name:   "nothing ran",
			res:    func() *Results { return &Results{} },
			states: []string{none, none, none, none, none, none, none, none},
		},
		{
			name: "a smaller dataset says so",
			res: func() *Results {
				r := sampleResults()
				r.Sizes = r.Sizes[:2]
				return r
			},
			states: []string{no, no, no, no, no, no, none, none},
			names:  map[int]string{0: "100k messages", 1: "100k messages"},
			cells:  map[int]string{0: "measured at 100k messages; the target is set at 1M"},
		},
		{
			name: "a cluster without its delivery p99, one process short",
			res: func() *Results {
				r := metResults()
				r.Capacity.Cluster.BigRoomP99 = 0
				r.Capacity.Single.Held = 18_000
				return r
			},
			states: []string{yes, yes, yes, yes, yes, yes, no, no},
			cells:  map[int]string{6: "8% short", 7: "delivery p99 not measured"},
		},
		{
			name: "a capacity run smaller than the targets measures neither",
			res: func() *Results {
				r := metResults()
				r.Capacity.Single = &CapacityRun{Tried: 1500, Held: 1500}
				r.Capacity.Cluster = &CapacityRun{Tried: 1500, Held: 1500, Nodes: 3, BigRoomP99: msd(50)}
				return r
			},
			states: []string{yes, yes, yes, yes, yes, yes, none, none},
			cells:  map[int]string{6: "not measured in this run: it tried 1500", 7: "not measured in this run: it tried 1500"},
		},
		{
			name: "a capacity run that lost clients on the way is a miss",
			res: func() *Results {
				r := metResults()
				r.Capacity.Single = &CapacityRun{Tried: 1500, Held: 1400}
				return r
			},
			states: []string{yes, yes, yes, yes, yes, yes, no, yes},
			cells:  map[int]string{6: "93% short"},
		},
		{
			name: "memory from the capacity run when the fan-out scenario did not run",
			res: func() *Results {
				return &Results{Capacity: &CapacityFigures{Single: &CapacityRun{Tried: 19_500, Held: 19_500, RSSPerClientKiB: 26}}}
			},
			states: []string{none, none, none, none, no, none, yes, none},
			names:  map[int]string{4: "19500 clients, capacity run"},
			cells:  map[int]string{4: "8% over"},
		},
		{
			name: "one pbchat style over the memory target is a miss",
			res: func() *Results {
				r := metResults()
				for _, x := range r.Realtime {
					if x.Config.Style == StyleStockPbchat && x.Config.Clients == 10000 {
						x.IdleRSSPer1k = 30
					}
				}
				return r
			},
			states: []string{yes, yes, yes, yes, no, yes, yes, yes},
			cells:  map[int]string{4: "28% over"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := tc.res().Targets()
			if len(ts) != len(tc.states) {
				t.Fatalf("%d targets, want %d", len(ts), len(tc.states))
			}
			for i, tg := range ts {
				state := none
				if tg.met != nil {
					state = map[bool]string{true: yes, false: no}[*tg.met]
				}
				if state != tc.states[i] {
					t.Errorf("row %d %q: %s (%s), want %s", i, tg.name, state, tg.metCell(), tc.states[i])
				}
				if state == none && !strings.HasPrefix(tg.metCell(), "not measured in this run") {
					t.Errorf("row %d %q: met cell %q", i, tg.name, tg.metCell())
				}
				if want, ok := tc.cells[i]; ok && !strings.Contains(tg.metCell(), want) {
					t.Errorf("row %d %q: met cell %q, want it to say %q", i, tg.name, tg.metCell(), want)
				}
				if want, ok := tc.names[i]; ok && !strings.Contains(tg.name, want) {
					t.Errorf("row %d: name %q, want it to say %q", i, tg.name, want)
				}
				if want, ok := tc.gots[i]; ok && !strings.Contains(tg.got, want) {
					t.Errorf("row %d %q: measured %q, want it to say %q", i, tg.name, tg.got, want)
				}
				if state == no && tg.profile == nil && i < 6 && !strings.Contains(tg.name, "capacity run") {
					t.Errorf("row %d %q: a miss without a profile to explain it", i, tg.name)
				}
			}
		})
	}
}

func TestReportTargetsAndProfileNotes(t *testing.T) {
	cases := []struct {
		name       string
		res        *Results
		profileDir string
		want       []string
		wantNot    []string
	}{
		{
			name: "profiling off", res: sampleResults(),
			want: []string{
				"### Targets (issue 15: performance, round two)",
				"| send, 64 concurrent senders, 1M messages | ≥ 3,000 msg/s | 1355 msg/s (hand-written rule 1290, SQLite floor 5970) | **no** (55% short",
				"| SSE clients held by one process (20,000 open files) | ≈ 19,500 | – | not measured in this run",
				"#### What remains: the profiles of the missed targets",
				"Profile `send-c64-pbchat-1000000.pprof`",
				"Profile `read-1000000.pprof`, `-focus=hooks\\.overview\\.rooms`",
				"Profile `realtime-10000-pbchat-room-topics-heap.pprof`, `-sample_index=inuse_space`",
				"No profile in this run (profiling was off)",
				"### Targets of round one (issue 5)",
				"| unread p50, user in 200 rooms, 1M messages | ≤ 5 ms | 3.46 ms | yes |",
			},
		},
		{
			name: "a profile missing from the dir", res: sampleResults(), profileDir: t.TempDir(),
			want: []string{"No profile send-c64-pbchat-1000000.pprof in this run", "No profile realtime-10000-pbchat-room-topics.pprof in this run"},
		},
		{
			name: "every target met", res: metResults(),
			want:    []string{"| 50000 of 50000 on 3 nodes; delivery p50 40.0 / p99 90.0 ms | yes |"},
			wantNot: []string{"What remains", "**no**"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.res.ProfileDir = tc.profileDir
			tc.res.AttachProfileNotes()
			md := tc.res.Markdown()
			round1 := md[strings.Index(md, "### Targets of round one"):]
			for _, w := range tc.want {
				if !strings.Contains(md, w) {
					t.Errorf("report lacks %q", w)
				}
			}
			for _, w := range tc.wantNot {
				if strings.Contains(strings.TrimSuffix(md, round1), w) {
					t.Errorf("issue 15's part says %q", w)
				}
			}
		})
	}
}

func TestParsePprofTop(t *testing.T) {
	out := `File: pbchatbench
Type: cpu
Time: 2026-11-30 05:20:00 UTC
Duration: 3.21s, Total samples = 5.80s (180.69%)
Active filters:
   focus=hooks\.overview\.rooms
Showing nodes accounting for 1.20s, 20.69% of 5.80s total
Showing top 3 nodes out of 210
      flat  flat%   sum%        cum   cum%
     0.50s  8.62%  8.62%      0.50s  8.62%  internal/runtime/syscall.Syscall6
     0.40s  6.90% 15.52%      0.90s 15.52%  modernc.org/sqlite/lib.sqlite3VdbeExec
     0.30s  5.17% 20.69%      0.30s  5.17%  encoding/json.(*encodeState).string (inline)
`
	summary, rows := parsePprofTop(out)
	if summary != "Showing nodes accounting for 1.20s, 20.69% of 5.80s total" {
		t.Errorf("summary %q", summary)
	}
	if len(rows) != 4 || !strings.HasPrefix(strings.TrimSpace(rows[0]), "flat") || !strings.HasSuffix(rows[3], "(*encodeState).string (inline)") {
		t.Errorf("rows %q", rows)
	}
	if _, rows := parsePprofTop("File: x\nShowing nodes accounting for 0, 0% of 0 total\n      flat  flat%   sum%        cum   cum%\n"); rows != nil {
		t.Errorf("an empty table gives rows %q", rows)
	}
}

// A real heap profile read through `go tool pprof`: the note lists its top functions.
func TestProfileTopReadsAProfile(t *testing.T) {
	dir := t.TempDir()
	var held [][]byte
	for i := 0; i < 256; i++ {
		held = append(held, make([]byte, 64<<10))
	}
	f, err := os.Create(filepath.Join(dir, "heap.pprof"))
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	runtime.KeepAlive(held)

	note := profileTop(dir, profileRef{label: "heap", sampleIndex: "inuse_space"}, 5)
	if note.err != "" {
		t.Fatalf("note: %s", note.err)
	}
	if len(note.rows) < 2 || len(note.rows) > 6 || !strings.Contains(strings.Join(note.rows, "\n"), "TestProfileTopReadsAProfile") {
		t.Errorf("rows %q, want the header and up to 5 functions, this test among them", note.rows)
	}
	if !strings.HasPrefix(note.summary, "Showing nodes accounting for") {
		t.Errorf("summary %q", note.summary)
	}
}
