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
	Parallel      int // connections opened at once by the client process
	Exe           string
	Log           func(string)
	HeapProfile   string // when set, a heap profile with the clients connected is written here
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
	ready    chan string
}

func (c *collector) read(r io.Reader) {
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 1<<16), 1<<20)
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "READY":
			c.ready <- s.Text()
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
	close(c.ready)
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
	config, err := json.Marshal(SSEClientConfig{URL: a.URL, Parallel: cfg.Parallel, Clients: clients})
	if err != nil {
		return nil, err
	}

	res := &RealtimeResult{Config: cfg}
	baseRSS, baseHeap := SettledRSS()
	res.BaseRSS = baseRSS

	cmd := exec.Command(cfg.Exe, "-sse-client")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	defer func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}()
	col := &collector{bySeq: map[int][]delivery{}, waiting: map[int]chan struct{}{}, expected: map[int]int{}, ready: make(chan string, 1)}
	go col.read(stdout)
	if _, err := stdin.Write(append(config, '\n')); err != nil {
		return nil, err
	}
	select {
	case line, ok := <-col.ready:
		if !ok {
			return nil, fmt.Errorf("client process ended before connecting")
		}
		f := strings.Fields(line)
		res.Connected, _ = strconv.Atoi(f[1])
		res.Failed, _ = strconv.Atoi(f[2])
		millis, _ := strconv.Atoi(f[3])
		res.ConnectFor = time.Duration(millis) * time.Millisecond
	case <-time.After(10 * time.Minute):
		return nil, fmt.Errorf("clients not connected after 10 minutes")
	}
	if res.Failed > 0 {
		return res, fmt.Errorf("%d of %d clients failed to connect", res.Failed, cfg.Clients)
	}
	time.Sleep(500 * time.Millisecond)
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
	res.StackPer1k = float64(stacks.StackInuse) / (1 << 20) / (float64(cfg.Clients) / 1000)
	per1k := float64(cfg.Clients) / 1000
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
