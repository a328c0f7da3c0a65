package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pocketbase/pocketbase/core"

	"github.com/pbchat/pbchat/migrations"
)

// Realtime styles compared side by side.
const (
	StyleStock       = "stock PocketBase"   // plain PocketBase: chat_messages/*, list rule evaluated per client
	StyleRoomTopics  = "pbchat room topics" // members on chat/rooms/{id}, everybody else on chat_messages/*
	StyleStockPbchat = "pbchat stock subs"  // everybody on chat_messages/*, served by pbchat's hub
)

// RealtimeConfig is one realtime run: Clients SSE connections (one user
// each), a room of BigRoom of them and a room of SmallRoom of them.
type RealtimeConfig struct {
	Clients       int
	Style         string
	BigRoom       int
	SmallRoom     int
	BigMessages   int
	SmallMessages int
	Parallel      int // connections opened at once by each client process
	// Generators is the number of client processes (0: one); process k
	// connects from 127.0.0.(k+2), so that no address pair runs out of ports.
	Generators int
	// TolerateFailed measures with the clients that connected instead of
	// failing the run when some could not (a capacity run).
	TolerateFailed bool
	Exe            string
	Log            func(string)
	HeapProfile    string // when set, a heap profile with the clients connected is written here
	// Profile, when set, wraps the measured messages (not the connecting).
	Profile func(fn func())
}

// RealtimeResult is what one run measured (server process only).
type RealtimeResult struct {
	Config     RealtimeConfig
	Connected  int
	Failed     int
	ConnectFor time.Duration
	Lost       int // connections that ended during the run
	Leaked     int // events that reached a client outside the room: must be 0

	IdleRSSPer1k  float64 // MiB of server RSS per 1,000 idle connected clients
	IdleHeapPer1k float64 // MiB of Go heap+stacks per 1,000 clients
	BaseRSS       int64
	Goroutines    int
	StackPer1k    float64 // MiB of goroutine stacks per 1,000 clients (all stacks)

	Big, Small FanoutResult
}

// FanoutResult is the delivery of messages to one room.
type FanoutResult struct {
	Members        int
	Messages       int
	DeliveryP50    time.Duration // over every (message, member) delivery
	DeliveryP99    time.Duration
	AllP50         time.Duration // until the last member had it, per message
	AllP99         time.Duration
	CPUPerMessage  time.Duration // median server CPU per message (insert included)
	CPUPerDelivery time.Duration // CPUPerMessage / Members
	Missing        int           // deliveries that did not arrive within the timeout
}

type delivery struct {
	client int
	at     int64
}

// collector gathers the client process's delivery lines.
type collector struct {
	mu       sync.Mutex
	bySeq    map[int][]delivery
	waiting  map[int]chan struct{}
	expected map[int]int
	lost     int
}

// read takes one client process's lines; its READY line goes to ready,
// which is closed when the process's output ends.
func (c *collector) read(r io.Reader, ready chan<- string) {
	defer close(ready)
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 1<<16), 1<<20)
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "READY":
			ready <- s.Text()
		case "D":
			c.mu.Lock()
			c.lost++
			c.mu.Unlock()
		case "E":
			if len(f) != 4 {
				continue
			}
			client, _ := strconv.Atoi(f[1])
			seq, _ := strconv.Atoi(f[2])
			at, _ := strconv.ParseInt(f[3], 10, 64)
			c.mu.Lock()
			c.bySeq[seq] = append(c.bySeq[seq], delivery{client, at})
			if ch := c.waiting[seq]; ch != nil && len(c.bySeq[seq]) >= c.expected[seq] {
				close(ch)
				delete(c.waiting, seq)
			}
			c.mu.Unlock()
		}
	}
}

func (c *collector) expect(seq, n int) chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan struct{})
	if len(c.bySeq[seq]) >= n {
		close(ch)
		return ch
	}
	c.waiting[seq], c.expected[seq] = ch, n
	return ch
}

func (c *collector) take(seq int) []delivery {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := c.bySeq[seq]
	delete(c.bySeq, seq)
	delete(c.waiting, seq)
	return d
}

// RunRealtime runs one configuration in a fresh app.
func RunRealtime(cfg RealtimeConfig) (*RealtimeResult, error) {
	kind := KindPbchat
	if cfg.Style == StyleStock {
		kind = KindStock
	}
	a, err := NewApp("", kind)
	if err != nil {
		return nil, err
	}
	defer a.Close()

	if err := InsertUsers(a.App, 0, cfg.Clients); err != nil {
		return nil, err
	}
	users := make([]string, cfg.Clients)
	for i := range users {
		users[i] = UserID(i)
	}
	big, small := RoomID(1), RoomID(2)
	lastSeen := pbDate(time.Now())
	if err := InsertRoom(a.App, big, users[:cfg.BigRoom], lastSeen); err != nil {
		return nil, err
	}
	if err := InsertRoom(a.App, small, users[:cfg.SmallRoom], lastSeen); err != nil {
		return nil, err
	}
	tokens, err := a.Tokens(users)
	if err != nil {
		return nil, err
	}
	clients := make([]SSEClient, cfg.Clients)
	for i, u := range users {
		subs := []string{"chat_messages/*"}
		if cfg.Style == StyleRoomTopics && i < cfg.BigRoom {
			subs = []string{"chat/rooms/" + big}
			if i < cfg.SmallRoom {
				subs = append(subs, "chat/rooms/"+small)
			}
		}
		clients[i] = SSEClient{Token: tokens[u], Subs: subs}
	}
	res := &RealtimeResult{Config: cfg}
	baseRSS, baseHeap := SettledRSS()
	res.BaseRSS = baseRSS

	col := &collector{bySeq: map[int][]delivery{}, waiting: map[int]chan struct{}{}, expected: map[int]int{}}
	gens, err := startGenerators(cfg.Exe, a.URL, cfg.Parallel, max(cfg.Generators, 1), clients, col, 0)
	defer gens.stop()
	if err != nil {
		return nil, err
	}
	connected, failed, took, err := gens.ready(10 * time.Minute)
	res.Connected, res.Failed, res.ConnectFor = connected, failed, took
	if err != nil {
		return nil, err
	}
	if res.Failed > 0 && !cfg.TolerateFailed {
		return res, fmt.Errorf("%d of %d clients failed to connect", res.Failed, cfg.Clients)
	}
	// What connecting set off (presence: each user coming online is told
	// to their roommates) is done before anything is measured.
	settle(5 * time.Minute)
	idleRSS, idleHeap := SettledRSS()
	if cfg.HeapProfile != "" {
		if f, err := os.Create(cfg.HeapProfile); err == nil {
			_ = pprof.WriteHeapProfile(f)
			f.Close()
		}
	}
	var stacks runtime.MemStats
	runtime.ReadMemStats(&stacks)
	res.Goroutines = runtime.NumGoroutine()
	res.StackPer1k = float64(stacks.StackInuse) / (1 << 20) / (float64(max(res.Connected, 1)) / 1000)
	per1k := float64(max(res.Connected, 1)) / 1000
	res.IdleRSSPer1k = float64(idleRSS-baseRSS) / (1 << 20) / per1k
	res.IdleHeapPer1k = float64(int64(idleHeap)-int64(baseHeap)) / (1 << 20) / per1k

	messages, err := a.App.FindCachedCollectionByNameOrId(migrations.Messages)
	if err != nil {
		return nil, err
	}
	seq := 0
	post := func(room string, members int) (cpu time.Duration, deliveries []delivery, start time.Time, missing int, err error) {
		seq++
		done := col.expect(seq, members)
		m := core.NewRecord(messages)
		m.Set("room", room)
		m.Set("user", users[0])
		m.Set("text", "bench:"+strconv.Itoa(seq))
		cpu0 := CPUTime()
		start = time.Now()
		if err := a.App.Save(m); err != nil {
			return 0, nil, start, 0, err
		}
		select {
		case <-done:
		case <-time.After(60 * time.Second):
		}
		cpu = CPUTime() - cpu0
		deliveries = col.take(seq)
		missing = max(members-len(deliveries), 0)
		return cpu, deliveries, start, missing, nil
	}

	run := func(room string, members, n int) (FanoutResult, error) {
		out := FanoutResult{Members: members, Messages: n}
		var each, all []time.Duration
		var cpus []float64
		for k := 0; k < n; k++ {
			time.Sleep(20 * time.Millisecond) // let the previous message's writes finish
			cpu, ds, start, missing, err := post(room, members)
			if err != nil {
				return out, err
			}
			out.Missing += missing
			var last time.Duration
			for _, d := range ds {
				if d.client >= members {
					res.Leaked++
					continue
				}
				lat := time.Duration(d.at - start.UnixNano())
				each = append(each, lat)
				last = max(last, lat)
			}
			if missing > 0 {
				last = 60 * time.Second
			}
			all = append(all, last)
			cpus = append(cpus, float64(cpu))
		}
		out.DeliveryP50, out.DeliveryP99 = Percentile(each, 50), Percentile(each, 99)
		out.AllP50, out.AllP99 = Percentile(all, 50), Percentile(all, 99)
		out.CPUPerMessage = time.Duration(Median(cpus))
		out.CPUPerDelivery = out.CPUPerMessage / time.Duration(max(members, 1))
		return out, nil
	}

	// Warm up: the first messages pay for caches and prepared statements.
	if _, err := run(big, cfg.BigRoom, 2); err != nil {
		return res, err
	}
	res.Leaked = 0
	measure := func() {
		if res.Big, err = run(big, cfg.BigRoom, cfg.BigMessages); err != nil {
			return
		}
		res.Small, err = run(small, cfg.SmallRoom, cfg.SmallMessages)
	}
	if cfg.Profile != nil {
		cfg.Profile(measure)
	} else {
		measure()
	}
	if err != nil {
		return res, err
	}
	col.mu.Lock()
	res.Lost = col.lost
	col.mu.Unlock()
	return res, nil
}

// settle waits until this process has used less than a tenth of a core
// for half a second, up to limit.
func settle(limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		before := CPUTime()
		time.Sleep(500 * time.Millisecond)
		if CPUTime()-before < 50*time.Millisecond {
			return
		}
	}
}

// generators are the client processes of a run.
type generators struct {
	cmds    []*exec.Cmd
	stdins  []io.Closer
	readies []chan string
}

// startGenerators starts n client processes (exe -sse-client), each with
// its share of clients, connecting from its own loopback address
// 127.0.0.(ipBase+2+k).
func startGenerators(exe, url string, parallel, n int, clients []SSEClient, col *collector, ipBase int) (*generators, error) {
	g := &generators{}
	per := (len(clients) + n - 1) / n
	for k := 0; k < n && k*per < len(clients); k++ {
		part := clients[k*per : min((k+1)*per, len(clients))]
		config, err := json.Marshal(SSEClientConfig{URL: url, Parallel: parallel, Clients: part,
			LocalIP: fmt.Sprintf("127.0.0.%d", ipBase+k+2), Offset: k * per})
		if err != nil {
			return g, err
		}
		cmd := exec.Command(exe, "-sse-client")
		cmd.Stderr = os.Stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return g, err
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return g, err
		}
		if err := cmd.Start(); err != nil {
			return g, fmt.Errorf("start the client process %s: %w", exe, err)
		}
		ready := make(chan string, 1)
		g.cmds, g.stdins, g.readies = append(g.cmds, cmd), append(g.stdins, stdin), append(g.readies, ready)
		go col.read(stdout, ready)
		if _, err := stdin.Write(append(config, '\n')); err != nil {
			return g, fmt.Errorf("configure the client process: %w", err)
		}
	}
	return g, nil
}

// ready waits for every process's READY line: connected and failed
// clients, and the slowest process's connect time.
func (g *generators) ready(timeout time.Duration) (connected, failed int, took time.Duration, err error) {
	deadline := time.After(timeout)
	for _, ready := range g.readies {
		select {
		case line, ok := <-ready:
			if !ok {
				return connected, failed, took, fmt.Errorf("a client process ended before connecting")
			}
			f := strings.Fields(line)
			ok1, _ := strconv.Atoi(f[1])
			failed1, _ := strconv.Atoi(f[2])
			millis, _ := strconv.Atoi(f[3])
			connected, failed = connected+ok1, failed+failed1
			took = max(took, time.Duration(millis)*time.Millisecond)
		case <-deadline:
			return connected, failed, took, fmt.Errorf("clients not connected after %v", timeout)
		}
	}
	return connected, failed, took, nil
}

// stop closes the processes' stdin (they disconnect and exit) and waits.
func (g *generators) stop() {
	for _, stdin := range g.stdins {
		stdin.Close()
	}
	for _, cmd := range g.cmds {
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
}
