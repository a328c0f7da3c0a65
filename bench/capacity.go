package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
)

// The capacity scenario: how many SSE clients one process holds (this
// machine allows 20,000 open files per process), and a writer with realtime
// nodes over NATS holding many more, with the 1,000-member room's delivery
// measured at that size. The clients are held by load-generator processes
// (bench/cmd/pbchatload, or any binary that runs RunSSEClients for
// -sse-client), each connecting from its own loopback address 127.0.0.x so
// that no address pair runs out of ephemeral ports.

// CapacityConfig is one capacity run. Zero sizes skip their part.
type CapacityConfig struct {
	// OneProcessClients: SSE clients held by one pbchat process (this
	// process serves them, as RunRealtime).
	OneProcessClients int
	// ClusterClients: SSE clients spread over Nodes realtime nodes of one
	// writer, over a real NATS server.
	ClusterClients int
	Nodes          int // default 3
	// CompareClients: idle memory per client, stock PocketBase against
	// pbchat, measured at this size in this run (default 2,000).
	CompareClients int
	BigRoom        int // members of the measured room, all connected (default 1,000)
	Messages       int // messages to that room per measurement (default 50)
	// PerGenerator: clients per load-generator process (default 5,000).
	PerGenerator int
	Parallel     int    // connections each generator opens at once (default 64)
	LoadExe      string // the load generator; built from bench/cmd/pbchatload when empty (pbchatbench's own binary works too)
	// ProfileDir, when set, receives capacity-one.pprof: a CPU profile of the
	// one-process scenario's messages (the connecting left out).
	ProfileDir string
	PbchatExe  string // the pbchat binary for the cluster; built when empty
	Log        func(string)
}

// CapacityResult is what a capacity run measured.
type CapacityResult struct {
	Config CapacityConfig

	// One process.
	ClientsPerProcess int    // clients connected, subscribed and still there after the messages
	Profile           string // label of the one-process CPU profile in ProfileDir ("" when none)
	OneProcessTried   int
	// IdleBytesPerClient: server RSS per idle subscribed client (after GC),
	// IdleHeapBytesPerClient: Go heap and stacks per client, at OneProcessClients.
	IdleBytesPerClient     float64
	IdleHeapBytesPerClient float64
	Goroutines             int           // the server's goroutines with every client connected
	CPUPerEvent            time.Duration // server CPU per delivered event, 1,000-member room (the message's insert and hooks included)
	// CPUPerEventMarginal: what one more member costs, (CPU per message to the
	// big room − to the 50-member room) ÷ the difference in members: the
	// insert and the hooks' fixed work left out, per-member work (delivery,
	// notifications) kept.
	CPUPerEventMarginal time.Duration
	OneProcessP50       time.Duration // 1,000-member room delivery, one process
	OneProcessP99       time.Duration

	// Stock PocketBase against pbchat, CompareClients idle clients each, same run.
	CompareClients               int
	StockIdleBytesPerClient      float64
	StockIdleHeapBytesPerClient  float64
	PbchatIdleBytesPerClient     float64
	PbchatIdleHeapBytesPerClient float64

	// Writer and realtime nodes.
	ClusterTried   int
	ClusterClients int // connected, subscribed and still there after the messages
	ClusterNodes   int
	BigRoomP50     time.Duration // 1,000-member room delivery at ClusterClients
	BigRoomP99     time.Duration
	BigRoomMissing int // deliveries that never came
	// NodeCPUPerEvent: each node's CPU per event it delivered, less what the
	// node spends idle in as long (measured just before: keep-alives, closed
	// peer checks, presence heartbeats, GC); NodeCPUPerEventRaw without
	// that subtraction. WriterCPUPerMessage likewise.
	NodeCPUPerEvent     []time.Duration
	NodeCPUPerEventRaw  []time.Duration
	NodeIdleCPU         []time.Duration // each node's CPU per second with every client idle
	NodeBytesPerClient  []float64       // each node's RSS growth per client it holds
	WriterCPUPerMessage time.Duration
}

func (c *CapacityConfig) defaults() {
	if c.Nodes == 0 {
		c.Nodes = 3
	}
	if c.CompareClients == 0 {
		c.CompareClients = 2000
	}
	if c.BigRoom == 0 {
		c.BigRoom = 1000
	}
	if c.Messages == 0 {
		c.Messages = 50
	}
	if c.PerGenerator == 0 {
		c.PerGenerator = 5000
	}
	if c.Parallel == 0 {
		c.Parallel = 64
	}
	if c.Log == nil {
		c.Log = func(string) {}
	}
}

// RunCapacity runs the capacity scenario.
func RunCapacity(cfg CapacityConfig) (*CapacityResult, error) {
	cfg.defaults()
	RaiseFileLimit() // the children inherit it
	res := &CapacityResult{Config: cfg}
	if cfg.LoadExe == "" {
		exe, err := goBuild("github.com/pbchat/pbchat/bench/cmd/pbchatload", "pbchatload")
		if err != nil {
			return nil, err
		}
		cfg.LoadExe = exe
	}
	generators := func(clients int) int { return max(1, (clients+cfg.PerGenerator-1)/cfg.PerGenerator) }

	if cfg.CompareClients > 0 {
		res.CompareClients = cfg.CompareClients
		for _, style := range []string{StyleStock, StyleRoomTopics} {
			cfg.Log(fmt.Sprintf("capacity: idle memory, %s, %d clients", style, cfg.CompareClients))
			r, err := RunRealtime(RealtimeConfig{Clients: cfg.CompareClients, Style: style, BigRoom: min(cfg.BigRoom, cfg.CompareClients),
				SmallRoom: 50, BigMessages: 2, SmallMessages: 2, Parallel: cfg.Parallel, Generators: generators(cfg.CompareClients), Exe: cfg.LoadExe})
			if err != nil {
				return res, fmt.Errorf("compare %s: %w", style, err)
			}
			rss, heap := r.IdleRSSPer1k*(1<<20)/1000, r.IdleHeapPer1k*(1<<20)/1000
			if style == StyleStock {
				res.StockIdleBytesPerClient, res.StockIdleHeapBytesPerClient = rss, heap
			} else {
				res.PbchatIdleBytesPerClient, res.PbchatIdleHeapBytesPerClient = rss, heap
			}
		}
	}

	if n := cfg.OneProcessClients; n > 0 {
		cfg.Log(fmt.Sprintf("capacity: one process, %d clients", n))
		res.OneProcessTried = n
		rc := RealtimeConfig{Clients: n, Style: StyleRoomTopics, BigRoom: min(cfg.BigRoom, n), SmallRoom: 50,
			BigMessages: cfg.Messages, SmallMessages: cfg.Messages, Parallel: cfg.Parallel, Generators: generators(n), Exe: cfg.LoadExe,
			TolerateFailed: true}
		if cfg.ProfileDir != "" {
			const label = "capacity-one"
			rc.Profile = func(fn func()) {
				f, err := os.Create(filepath.Join(cfg.ProfileDir, label+".pprof"))
				if err != nil {
					cfg.Log(fmt.Sprintf("capacity: no profile: %v", err))
					fn()
					return
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					cfg.Log(fmt.Sprintf("capacity: no profile: %v", err))
					fn()
					return
				}
				fn()
				pprof.StopCPUProfile()
				res.Profile = label
			}
		}
		r, err := RunRealtime(rc)
		if r != nil {
			res.ClientsPerProcess = r.Connected - r.Lost
			res.IdleBytesPerClient = r.IdleRSSPer1k * (1 << 20) / 1000
			res.IdleHeapBytesPerClient = r.IdleHeapPer1k * (1 << 20) / 1000
			res.Goroutines = r.Goroutines
			res.CPUPerEvent = r.Big.CPUPerDelivery
			if extra := r.Big.Members - r.Small.Members; extra > 0 {
				res.CPUPerEventMarginal = (r.Big.CPUPerMessage - r.Small.CPUPerMessage) / time.Duration(extra)
			}
			res.OneProcessP50, res.OneProcessP99 = r.Big.DeliveryP50, r.Big.DeliveryP99
		}
		if err != nil {
			return res, fmt.Errorf("one process: %w", err)
		}
	}

	if cfg.ClusterClients > 0 {
		if err := runCapacityCluster(cfg, res, generators); err != nil {
			return res, fmt.Errorf("cluster: %w", err)
		}
	}
	return res, nil
}

// runCapacityCluster: a writer, cfg.Nodes realtime nodes and a NATS server;
// client i connects to node i % Nodes, the room's members on its topic and
// everybody else on chat_messages/*.
func runCapacityCluster(cfg CapacityConfig, res *CapacityResult, generatorsFor func(int) int) error {
	n := cfg.ClusterClients
	res.ClusterTried, res.ClusterNodes = n, cfg.Nodes
	pbchat := cfg.PbchatExe
	if pbchat == "" {
		exe, err := goBuild("github.com/pbchat/pbchat", "pbchat")
		if err != nil {
			return err
		}
		pbchat = exe
	}
	cfg.Log(fmt.Sprintf("capacity: cluster data, %d users", n))
	dir, err := os.MkdirTemp("", "pbchat-capacity-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	room, tokens, err := capacityData(dir, n, cfg.BigRoom)
	if err != nil {
		return err
	}

	natsPort, err := freePort()
	if err != nil {
		return err
	}
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: natsPort, NoLog: true, NoSigs: true, MaxPayload: 1 << 20})
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	go ns.Start()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(10 * time.Second) {
		return fmt.Errorf("nats is not ready")
	}
	natsURL := fmt.Sprintf("nats://127.0.0.1:%d", natsPort)

	var procs []*serverProc
	defer func() {
		for _, p := range procs {
			p.stop()
		}
	}()
	writer, err := startServer(pbchat, "writer", []string{"PBCHAT_NATS_URL=" + natsURL}, "serve", "--dir", dir)
	if err != nil {
		return err
	}
	procs = append(procs, writer)
	var nodes []*serverProc
	for i := 1; i <= cfg.Nodes; i++ {
		node, err := startServer(pbchat, fmt.Sprintf("node%d", i), nil, "realtime", "--writer", writer.url, "--nats", natsURL)
		if err != nil {
			return err
		}
		procs, nodes = append(procs, node), append(nodes, node)
	}

	col := &collector{bySeq: map[int][]delivery{}, waiting: map[int]chan struct{}{}, expected: map[int]int{}}
	baseRSS := make([]int64, len(nodes))
	held := make([]int, len(nodes))
	var all []*generators
	defer func() {
		for _, g := range all {
			g.stop()
		}
	}()
	// Every node's clients connect at once: a client connected early must not
	// sit idle (5 minutes ends an idle connection) while the others connect.
	ipBase := 0
	for k, node := range nodes {
		baseRSS[k] = procRSS(node.cmd.Process.Pid)
		var clients []SSEClient
		for i := k; i < n; i += len(nodes) {
			sub := "chat_messages/*"
			if i < cfg.BigRoom {
				sub = "chat/rooms/" + room
			}
			clients = append(clients, SSEClient{Token: tokens[i], Subs: []string{sub}})
		}
		cfg.Log(fmt.Sprintf("capacity: %d clients on %s", len(clients), node.name))
		g, err := startGenerators(cfg.LoadExe, node.url, cfg.Parallel, generatorsFor(len(clients)), clients, col, ipBase)
		all = append(all, g)
		if err != nil {
			return err
		}
		ipBase += len(g.cmds)
	}
	for k, node := range nodes {
		connected, failed, took, err := all[k].ready(15 * time.Minute)
		if err != nil {
			return err
		}
		held[k] = connected
		res.ClusterClients += connected
		cfg.Log(fmt.Sprintf("capacity: %s holds %d (%d failed) after %v", node.name, connected, failed, took))
	}
	// What connecting set off (authorisations, presence) is done first.
	settleProcs(procs, 10*time.Minute)
	for k, node := range nodes {
		if held[k] > 0 {
			res.NodeBytesPerClient = append(res.NodeBytesPerClient, float64(procRSS(node.cmd.Process.Pid)-baseRSS[k])/float64(held[k]))
		}
	}

	posts := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}, Timeout: 30 * time.Second}
	members := min(cfg.BigRoom, n)
	// Idle cost, to subtract: what each process uses in 5 s with nothing sent.
	idleFrom, idleStart := procsCPUTime(procs), time.Now()
	time.Sleep(5 * time.Second)
	idleTo, idleFor := procsCPUTime(procs), time.Since(idleStart)
	idleRate := make([]float64, len(procs)) // CPU per wall second
	for i := range procs {
		idleRate[i] = float64(idleTo[i]-idleFrom[i]) / float64(idleFor)
	}
	for k := range nodes {
		res.NodeIdleCPU = append(res.NodeIdleCPU, time.Duration(idleRate[k+1]*float64(time.Second)))
	}
	cpuBefore := procsCPUTime(procs)
	measureStart := time.Now()
	var each []time.Duration
	for seq := 1; seq <= cfg.Messages+2; seq++ {
		time.Sleep(50 * time.Millisecond)
		done := col.expect(seq, members)
		body, _ := json.Marshal(map[string]any{"room": room, "text": "bench:" + strconv.Itoa(seq)})
		start := time.Now()
		status, out, err := Call(context.Background(), posts, http.MethodPost, writer.url+"/api/collections/chat_messages/records", tokens[0], body)
		if err != nil || status != http.StatusOK {
			return fmt.Errorf("post: %d %s %v", status, truncate(out, 200), err)
		}
		select {
		case <-done:
		case <-time.After(60 * time.Second):
		}
		got := col.take(seq)
		if seq <= 2 {
			if seq == 2 {
				cpuBefore, measureStart = procsCPUTime(procs), time.Now() // the first two warm up
			}
			continue
		}
		res.BigRoomMissing += max(members-len(got), 0)
		for _, d := range got {
			each = append(each, time.Duration(d.at-start.UnixNano()))
		}
	}
	cpuAfter := procsCPUTime(procs)
	measured := time.Since(measureStart)
	// netCPU is a process's CPU during the messages less its idle cost.
	netCPU := func(i int) time.Duration {
		return max(cpuAfter[i]-cpuBefore[i]-time.Duration(idleRate[i]*float64(measured)), 0)
	}
	res.BigRoomP50, res.BigRoomP99 = Percentile(each, 50), Percentile(each, 99)
	res.WriterCPUPerMessage = netCPU(0) / time.Duration(cfg.Messages)
	for k := range nodes {
		// Node k delivers to the members i with i % Nodes == k.
		delivered := 0
		for i := k; i < members; i += len(nodes) {
			delivered++
		}
		if delivered > 0 {
			events := time.Duration(delivered * cfg.Messages)
			res.NodeCPUPerEvent = append(res.NodeCPUPerEvent, netCPU(k+1)/events)
			res.NodeCPUPerEventRaw = append(res.NodeCPUPerEventRaw, (cpuAfter[k+1]-cpuBefore[k+1])/events)
		}
	}
	col.mu.Lock()
	res.ClusterClients -= col.lost
	col.mu.Unlock()
	return nil
}

// capacityData writes n users and a room of the first members of them into
// dir; the room and every user's token.
func capacityData(dir string, n, members int) (string, []string, error) {
	app, err := NewApp(dir, KindPbchat)
	if err != nil {
		return "", nil, err
	}
	defer app.Close()
	if err := InsertUsers(app.App, 0, n); err != nil {
		return "", nil, err
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = UserID(i)
	}
	room := RoomID(1)
	if err := InsertRoom(app.App, room, ids[:min(members, n)], pbDate(time.Now())); err != nil {
		return "", nil, err
	}
	byID, err := app.Tokens(ids)
	if err != nil {
		return "", nil, err
	}
	tokens := make([]string, n)
	for i, id := range ids {
		tokens[i] = byID[id]
	}
	return room, tokens, nil
}

// serverProc is a pbchat child process serving HTTP on loopback.
type serverProc struct {
	name string
	cmd  *exec.Cmd
	url  string
}

func startServer(bin, name string, env []string, args ...string) (*serverProc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(bin, append(args, "--http", addr)...)
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &serverProc{name: name, cmd: cmd, url: "http://" + addr}
	deadline := time.Now().Add(60 * time.Second)
	for {
		res, err := http.Get(p.url + "/api/health")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("%s did not become healthy", name)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (p *serverProc) stop() {
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// goBuild builds a package of this module into a temporary directory.
func goBuild(pkg, name string) (string, error) {
	out := filepath.Join(os.TempDir(), "pbchat-capacity-bin", name)
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build %s: %w", pkg, err)
	}
	return out, nil
}

// procsCPUTime reads each process's user+system CPU time from /proc.
func procsCPUTime(procs []*serverProc) []time.Duration {
	out := make([]time.Duration, len(procs))
	for i, p := range procs {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
		if err != nil {
			continue
		}
		fields := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+1:]))
		utime, _ := strconv.Atoi(fields[11])
		stime, _ := strconv.Atoi(fields[12])
		out[i] = time.Duration(utime+stime) * 10 * time.Millisecond // USER_HZ is 100 on Linux
	}
	return out
}

// settleProcs waits until procs together have used less than a tenth of
// a core for a second, up to limit.
func settleProcs(procs []*serverProc, limit time.Duration) {
	sum := func() (total time.Duration) {
		for _, d := range procsCPUTime(procs) {
			total += d
		}
		return total
	}
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		before := sum()
		time.Sleep(time.Second)
		if sum()-before < 100*time.Millisecond {
			return
		}
	}
}

// procRSS is a process's VmRSS in bytes.
func procRSS(pid int) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
