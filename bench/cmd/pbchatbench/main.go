// Command pbchatbench measures pbchat side by side with stock PocketBase
// (the same collections with hand-written rules) and the SQLite floor, in
// one run on one machine, and writes the tables to BENCHMARKS.md.
//
//	go run ./bench/cmd/pbchatbench -quick                     # CI-sized, under 2 minutes
//	go run ./bench/cmd/pbchatbench -full -out BENCHMARKS.md   # every scenario, 10k→1M messages, 1k→10k clients
//
// The report checks issue 15's targets (and issue 5's), lists the top
// functions of the profile behind each missed one (every run profiles its
// scenarios, into a temporary directory unless -profile DIR is given), and
// -full draws four SVG charts into docs/ (-charts DIR elsewhere; -quick
// draws them only when -charts is given). -full also runs the capacity
// scenario (bench.RunCapacity: 19,500 clients in one process, 50,000 on a
// writer with 3 realtime nodes over NATS).
//
// Scenarios: send (HTTP, concurrency 1/16/64), read (history page, rooms
// overview, unread totals), realtime fan-out and memory (real SSE clients in
// a second process), growth (each figure per database size).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pbchat/pbchat/bench"
)

type mode struct {
	sizes         []int
	concurrency   []int
	sendDuration  time.Duration
	sendRounds    int
	history       int
	overview      int
	naive         int
	clients       []int
	bigMessages   int
	smallMessages int
}

var modes = map[string]mode{
	"quick": {
		sizes: []int{10_000, 100_000}, concurrency: []int{1, 16, 64}, sendDuration: time.Second, sendRounds: 1,
		history: 40, overview: 30, naive: 1,
		clients: []int{1000, 5000}, bigMessages: 5, smallMessages: 20,
	},
	"full": {
		sizes: []int{10_000, 100_000, 1_000_000}, concurrency: []int{1, 16, 64}, sendDuration: 3 * time.Second, sendRounds: 3,
		history: 300, overview: 200, naive: 3,
		clients: []int{1000, 5000, 10000}, bigMessages: 40, smallMessages: 100,
	},
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-sse-client" {
		bench.RaiseFileLimit()
		if err := bench.RunSSEClients(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "sse-client:", err)
			os.Exit(1)
		}
		return
	}

	quick := flag.Bool("quick", false, "CI-sized run (under 2 minutes): 10k and 100k messages, 1k and 5k clients")
	full := flag.Bool("full", false, "every scenario at full size: 10k, 100k and 1M messages; 1k, 5k and 10k clients")
	out := flag.String("out", "", "write the results into this Markdown file (its pbchatbench section; the rest of the file is kept)")
	only := flag.String("only", "send,read,realtime", "scenarios to run: send, read, realtime")
	sizes := flag.String("sizes", "", "override the dataset sizes, e.g. 10000,1000000")
	clients := flag.String("clients", "", "override the realtime client counts, e.g. 5000")
	concurrency := flag.String("concurrency", "", "override the send concurrencies, e.g. 64")
	sendDuration := flag.Duration("send-duration", 0, "override the duration of one send round")
	rounds := flag.Int("rounds", 0, "override the number of send rounds")
	profileDir := flag.String("profile", "", "keep the CPU profile of each scenario (and a heap profile per realtime run) in this directory; \"off\": no profiles, and no profile notes under missed targets (default: a temporary directory)")
	chartsDir := flag.String("charts", "", "write the SVG charts into this directory (default: docs with -full, none with -quick); \"off\": none")
	capacity := flag.Bool("capacity", false, "run the capacity scenario (bench.RunCapacity: SSE clients one process holds; a writer with 3 realtime nodes over NATS); on by default with -full, -capacity=false skips it")
	capacityOne := flag.Int("capacity-one", 19_500, "capacity scenario: SSE clients for one process (0 skips)")
	capacityCluster := flag.Int("capacity-cluster", 50_000, "capacity scenario: SSE clients for the writer and 3 realtime nodes (0 skips)")
	tmp := flag.String("tmp", "", "directory for the temporary data dirs (default: the system temp dir)")
	flag.Parse()
	if *quick && *full {
		fail("-quick and -full exclude each other")
	}
	capacitySet := false
	flag.Visit(func(f *flag.Flag) { capacitySet = capacitySet || f.Name == "capacity" })
	if !capacitySet {
		*capacity = *full
	}
	name := "quick"
	if *full {
		name = "full"
	}
	m := modes[name]
	if *sizes != "" {
		m.sizes = ints(*sizes)
	}
	if *clients != "" {
		m.clients = ints(*clients)
	}
	if *concurrency != "" {
		m.concurrency = ints(*concurrency)
	}
	if *sendDuration > 0 {
		m.sendDuration = *sendDuration
	}
	if *rounds > 0 {
		m.sendRounds = *rounds
	}
	want := map[string]bool{}
	for _, s := range strings.Split(*only, ",") {
		want[strings.TrimSpace(s)] = true
	}
	// Every temporary data dir of the run lives under one directory, removed
	// at the end, on failure and on interrupt.
	runDir, err := os.MkdirTemp(*tmp, "pbchatbench-run-")
	if err != nil {
		fail(err.Error())
	}
	os.Setenv("TMPDIR", runDir)
	removeRunDir := atExit(func() { os.RemoveAll(runDir) })
	defer removeRunDir()
	exe, err := os.Executable()
	if err != nil {
		fail(err.Error())
	}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM, syscall.SIGPIPE)
	go func() {
		sig := <-signals
		logf("%s: cleaning up", sig)
		exit(2)
	}()

	res := &bench.Results{
		Mode: name, Command: "go run ./bench/cmd/pbchatbench " + strings.Join(os.Args[1:], " "),
		Started: time.Now(), Machine: bench.DescribeMachine(), LoadStart: bench.LoadAverage(),
	}
	logf("pbchatbench %s mode: %d CPUs, %s, Go %s, PocketBase %s, load %s", name, res.Machine.CPUs, res.Machine.CPUModel, res.Machine.GoVersion, res.Machine.PocketBase, res.LoadStart)

	switch *profileDir {
	case "off":
		*profileDir = ""
	case "":
		*profileDir = filepath.Join(runDir, "profiles")
	}
	res.ProfileDir = *profileDir
	if *chartsDir == "" && *full {
		*chartsDir = "docs"
	}
	if *chartsDir == "off" {
		*chartsDir = ""
	}
	profiling = *profileDir != ""
	profile := func(label string, fn func()) {
		if *profileDir == "" {
			fn()
			return
		}
		_ = os.MkdirAll(*profileDir, 0o755)
		f, err := os.Create(filepath.Join(*profileDir, label+".pprof"))
		if err != nil {
			fail(err.Error())
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fail(err.Error())
		}
		fn()
		pprof.StopCPUProfile()
		f.Close()
	}

	if want["send"] || want["read"] {
		for _, size := range m.sizes {
			logf("dataset: %d messages", size)
			s, err := runSize(size, m, want, profile)
			if err != nil {
				fail(fmt.Sprintf("%d messages: %v", size, err))
			}
			res.Sizes = append(res.Sizes, *s)
		}
	}
	if want["realtime"] {
		styles := []string{bench.StyleStock, bench.StyleRoomTopics, bench.StyleStockPbchat}
		for _, n := range m.clients {
			for _, style := range styles {
				logf("realtime: %d clients, %s", n, style)
				cfg := bench.RealtimeConfig{
					Clients: n, Style: style, BigRoom: min(1000, n), SmallRoom: 50,
					BigMessages: m.bigMessages, SmallMessages: m.smallMessages, Parallel: 32, Exe: exe, Log: logs,
				}
				if *profileDir != "" {
					label := fmt.Sprintf("realtime-%d-%s", n, strings.ReplaceAll(style, " ", "-"))
					cfg.HeapProfile = filepath.Join(*profileDir, label+"-heap.pprof")
					cfg.Profile = func(fn func()) { profile(label, fn) }
				}
				if style == bench.StyleStock {
					// Each stock message costs a second or more of CPU at 5k
					// clients: fewer of them keep the run short (the figures
					// are medians; its spread is small next to its size).
					cfg.BigMessages, cfg.SmallMessages = min(cfg.BigMessages, 10), min(cfg.SmallMessages, 10)
					if n > 5000 {
						cfg.BigMessages, cfg.SmallMessages = min(cfg.BigMessages, 5), min(cfg.SmallMessages, 5)
					} else if n > 1000 {
						cfg.BigMessages, cfg.SmallMessages = min(cfg.BigMessages, 5), min(cfg.SmallMessages, 8)
					}
				}
				var r *bench.RealtimeResult
				var err error
				r, err = bench.RunRealtime(cfg)
				if err != nil {
					fail(fmt.Sprintf("realtime %d %s: %v", n, style, err))
				}
				logf("  connected %d in %s; RSS %.1f MiB/1k idle clients (heap+stacks %.1f); 1k-room delivery p50 %.1f p99 %.1f ms (last %.1f), CPU %.2f ms/msg; 50-room CPU %.3f ms/msg, p99 %.1f ms; leaks %d, lost %d",
					r.Connected, r.ConnectFor.Round(time.Millisecond), r.IdleRSSPer1k, r.IdleHeapPer1k, msf(r.Big.DeliveryP50), msf(r.Big.DeliveryP99), msf(r.Big.AllP99), msf(r.Big.CPUPerMessage),
					msf(r.Small.CPUPerMessage), msf(r.Small.DeliveryP99), r.Leaked, r.Lost)
				logf("  goroutines %d, stacks %.1f MiB/1k", r.Goroutines, r.StackPer1k)
				res.Realtime = append(res.Realtime, r)
			}
		}
	}

	var capacityResult *bench.CapacityResult
	if *capacity {
		logf("capacity: %d clients in one process, %d on a writer and 3 realtime nodes", *capacityOne, *capacityCluster)
		c, err := bench.RunCapacity(bench.CapacityConfig{OneProcessClients: *capacityOne, ClusterClients: *capacityCluster, Log: logs})
		if c != nil {
			capacityResult, res.Capacity = c, c.Figures()
		}
		if err != nil {
			// The report still says what was held before the failure.
			res.Notes = append(res.Notes, fmt.Sprintf("The capacity scenario failed: %v.", err))
			logf("capacity: %v", err)
		}
	}

	res.Duration = time.Since(res.Started)
	res.LoadEnd = bench.LoadAverage()
	res.AttachProfileNotes()
	if *chartsDir != "" {
		linkBase := "."
		if *out != "" {
			linkBase = filepath.Dir(*out)
		}
		if err := res.WriteCharts(*chartsDir, linkBase); err != nil {
			fail(err.Error())
		}
		for _, c := range res.Charts {
			logf("wrote %s", filepath.Join(*chartsDir, c.Name))
		}
	}
	md := res.Markdown()
	fmt.Println()
	fmt.Println(md)
	if *out != "" {
		if err := bench.WriteSection(*out, md); err != nil {
			fail(err.Error())
		}
		logf("wrote %s", *out)
		if capacityResult != nil {
			if err := bench.WriteCapacitySection(*out, capacityResult); err != nil {
				fail(err.Error())
			}
		}
	}
	logf("done in %s", res.Duration.Round(time.Second))
}

func runSize(size int, m mode, want map[string]bool, profile func(string, func())) (*bench.SizeResults, error) {
	root, err := os.MkdirTemp("", "pbchatbench-data-")
	if err != nil {
		return nil, err
	}
	forget := atExit(func() { os.RemoveAll(root) })
	defer forget()
	pbDir, stockDir := filepath.Join(root, "pbchat"), filepath.Join(root, "stock")

	ds, err := dataset(size, pbDir)
	if err != nil {
		return nil, err
	}
	if err := bench.CopyDir(pbDir, stockDir); err != nil {
		return nil, err
	}
	logf("  written in %s: %d rooms, %d memberships, %d attachments, %d reactions, %.0f MiB", ds.GenTime.Round(100*time.Millisecond), ds.Rooms, ds.Memberships, ds.Links, ds.Reactions, float64(ds.DBBytes)/(1<<20))

	pb, err := bench.NewApp(pbDir, bench.KindPbchat)
	if err != nil {
		return nil, err
	}
	defer pb.Close()
	stock, err := bench.NewApp(stockDir, bench.KindStock)
	if err != nil {
		return nil, err
	}
	defer stock.Close()

	out := &bench.SizeResults{Dataset: ds}
	if want["read"] {
		var err error
		profile(fmt.Sprintf("read-%d", size), func() {
			out.Read, err = bench.RunRead(bench.ReadConfig{Pbchat: pb, Stock: stock, Dataset: ds, History: m.history, Overview: m.overview, Naive: m.naive, Log: logs})
		})
		if err != nil {
			return nil, err
		}
	}
	if want["send"] {
		var err error
		concurrency := m.concurrency
		if size != slices.Max(m.sizes) {
			// The growth table reads concurrency 64; the sweep is shown for the largest size.
			concurrency = []int{slices.Max(m.concurrency)}
		}
		cfg := bench.SendConfig{Pbchat: pb, Stock: stock, Senders: ds.Senders, Concurrency: concurrency, Duration: m.sendDuration, Rounds: m.sendRounds, Log: logs}
		if profiling {
			cfg.Profile = func(label string, fn func()) { profile(fmt.Sprintf("%s-%d", label, size), fn) }
		}
		out.Send, err = bench.RunSend(cfg)
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// dataset writes the dataset of size messages into dir, or copies it from
// the -reuse-data cache (made by an earlier run with the same flag).
func dataset(size int, dir string) (*bench.Dataset, error) {
	cached := ""
	if *reuseData != "" {
		cached = filepath.Join(*reuseData, strconv.Itoa(size))
		if raw, err := os.ReadFile(filepath.Join(cached, "dataset.json")); err == nil {
			var ds bench.Dataset
			if err := json.Unmarshal(raw, &ds); err != nil {
				return nil, err
			}
			if err := bench.CopyDir(cached, dir); err != nil {
				return nil, err
			}
			_ = os.Remove(filepath.Join(dir, "dataset.json"))
			ds.Dir = dir
			logf("  reused %s", cached)
			return &ds, nil
		}
	}
	schema, err := bench.NewSchemaApp(dir)
	if err != nil {
		return nil, err
	}
	ds, err := bench.GenerateDataset(schema, size, 42, logs)
	if err != nil {
		return nil, err
	}
	if err := schema.ResetBootstrapState(); err != nil {
		return nil, err
	}
	if cached != "" {
		_ = os.RemoveAll(cached)
		if err := bench.CopyDir(dir, cached); err != nil {
			return nil, err
		}
		raw, _ := json.Marshal(ds)
		if err := os.WriteFile(filepath.Join(cached, "dataset.json"), raw, 0o644); err != nil {
			return nil, err
		}
	}
	return ds, nil
}

func ints(s string) []int {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			fail("bad number " + f)
		}
		out = append(out, n)
	}
	return out
}

func msf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

var start = time.Now()

var profiling bool

var reuseData = flag.String("reuse-data", "", "keep generated datasets in this directory and reuse them on later runs (for profiling; delete it after schema changes)")

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, a...))
}

func logs(s string) { logf("%s", s) }

// Clean-ups that must also run when the command fails or is interrupted
// (os.Exit skips deferred calls): the temporary data dirs.
var (
	exitMu    sync.Mutex
	exitFuncs = map[int]func(){}
	exitNext  int
)

// atExit registers fn for an abnormal exit; the returned func runs it now
// and unregisters it.
func atExit(fn func()) func() {
	exitMu.Lock()
	id := exitNext
	exitNext++
	exitFuncs[id] = fn
	exitMu.Unlock()
	return func() {
		exitMu.Lock()
		f := exitFuncs[id]
		delete(exitFuncs, id)
		exitMu.Unlock()
		if f != nil {
			f()
		}
	}
}

func exit(code int) {
	exitMu.Lock()
	for id, fn := range exitFuncs {
		delete(exitFuncs, id)
		fn()
	}
	exitMu.Unlock()
	os.Exit(code)
}

func fail(msg string) {
	logf("error: %s", msg)
	exit(1)
}
