package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkReconnectStorm: 10,000 SDK-like clients are connected (SSE, each
// following its 5 rooms' topics and chat_messages/*), all cut at once and
// kept away for 60 s while writers post into their rooms; then all of them
// reconnect, subscribe again and sync from their cursors at the same moment.
// Reported: the time until every client has caught up (target ≤ 10 s on
// the 2-core machine), p50/p99 of a client's catch-up, of one sync request,
// of the stream's open until PB_CONNECT and of the subscribe request, the
// server's CPU, errors, and whether every client got exactly the messages
// posted into its rooms.
//
//	go test ./bench -run '^$' -bench ReconnectStorm -benchtime 1x -timeout 30m -v
//
// The server is the real `pbchat` binary in a child process (one process,
// no NATS) on a data dir with pbchat's rate limits lifted (every client
// comes from loopback); the clients run in this process, their realtime
// streams spread over 250 loopback source addresses. The REST requests
// (subscribe and sync) share a pool of PBCHAT_STORM_CONNS connections
// (default 1,000): 10,000 clients with a socket each for realtime and for
// requests would pass the 20,000 open files a process may have here.
// PBCHAT_STORM_CLIENTS, PBCHAT_STORM_OUTAGE (seconds) and
// PBCHAT_STORM_MESSAGES change the sizes; PBCHAT_STORM_INPROCESS=1 runs the
// server in this process and PBCHAT_STORM_PROFILE=FILE writes a CPU profile
// of the storm alone (in process: at most ~5,000 clients, for the open files).
func BenchmarkReconnectStorm(b *testing.B) {
	cfg := stormConfig{
		clients:  envInt("PBCHAT_STORM_CLIENTS", 10000),
		outage:   time.Duration(envInt("PBCHAT_STORM_OUTAGE", 60)) * time.Second,
		messages: envInt("PBCHAT_STORM_MESSAGES", 5000),
		conns:    envInt("PBCHAT_STORM_CONNS", 1000),
	}
	cfg.rooms = max(cfg.clients/10, 1) // 50 members each: every client in 5 rooms
	for n := 0; n < b.N; n++ {
		r := runStorm(b, cfg)
		b.ReportMetric(r.allCaughtUp.Seconds(), "all-caught-up-s")
		b.ReportMetric(ms(Percentile(r.catchUp, 50)), "catch-up-p50-ms")
		b.ReportMetric(ms(Percentile(r.catchUp, 99)), "catch-up-p99-ms")
		b.ReportMetric(ms(Percentile(r.syncOnConn, 50)), "sync-p50-ms")
		b.ReportMetric(ms(Percentile(r.syncOnConn, 99)), "sync-p99-ms")
		b.ReportMetric(float64(r.errors), "errors")
	}
}

type stormConfig struct {
	clients, rooms, messages, conns int
	outage                          time.Duration
}

type stormResult struct {
	allCaughtUp time.Duration
	catchUp     []time.Duration // per client: from the release to its last sync answer
	syncTotal   []time.Duration // per sync request, waiting for a pooled connection included
	syncOnConn  []time.Duration // per sync request, on its connection
	streamOpen  []time.Duration // per reconnect: the request until PB_CONNECT
	subscribe   []time.Duration // per reconnect: the subscribe request on its connection
	errors      int
}

// stormConnectTiming is where a reconnect's time went, as the client saw it.
type stormConnectTiming struct {
	streamOpen time.Duration // GET /api/realtime until its PB_CONNECT event
	subscribe  time.Duration // POST /api/realtime on its connection
}

// stormClient is one client: its user, rooms and where it stands.
type stormClient struct {
	token  string
	rooms  []string
	cursor string
	cancel context.CancelFunc
	closed chan struct{}
}

func runStorm(b *testing.B, cfg stormConfig) stormResult {
	b.StopTimer()
	dir := b.TempDir()
	clients, roomMembers := prepareStormData(b, dir, cfg)
	server := startStormServer(b, dir)

	// Clients come from 250 loopback addresses (ports for 20,000 streams and
	// their TIME_WAITs), each with a pool for its REST requests (PocketBase
	// takes a subscription only from the address that holds the stream):
	// a realtime connection per client, conns REST connections in all.
	const addresses = 250
	streams := make([]*http.Client, addresses)
	apis := make([]*http.Client, addresses)
	perAddress := max(cfg.conns/addresses, 1)
	for i := range streams {
		dialer := &net.Dialer{Timeout: 30 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i))}}
		streams[i] = &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext, DisableKeepAlives: true, DisableCompression: true}}
		apis[i] = &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext, MaxConnsPerHost: perAddress,
			MaxIdleConnsPerHost: perAddress, DisableCompression: true}, Timeout: 2 * time.Minute}
	}
	api := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}, Timeout: 2 * time.Minute} // the writers'

	// Everyone connected, subscribed, with a starting cursor.
	start := time.Now()
	var failures atomic.Int64
	var firstErr atomic.Value
	stormEach(len(clients), 256, func(i int) {
		if _, err := clients[i].connect(context.Background(), apis[i%addresses], streams[i%addresses], server); err != nil {
			failures.Add(1)
			firstErr.CompareAndSwap(nil, err.Error())
			return
		}
		var head stormSync
		if _, err := stormGetSync(context.Background(), apis[i%addresses], server, clients[i].token, "", &head); err != nil {
			failures.Add(1)
			firstErr.CompareAndSwap(nil, err.Error())
			return
		}
		clients[i].cursor = head.Cursor
	})
	if failures.Load() > 0 {
		b.Fatalf("%d of %d clients could not connect: %v", failures.Load(), len(clients), firstErr.Load())
	}
	b.Logf("%d clients connected and subscribed in %s", len(clients), time.Since(start).Round(time.Millisecond))

	// The outage: every stream cut; writers post into the rooms meanwhile.
	for _, c := range clients {
		c.cancel()
	}
	for _, c := range clients {
		<-c.closed
	}
	posted := make([]atomic.Int64, cfg.rooms)
	outageEnd := time.Now().Add(cfg.outage)
	stormPost(b, api, server, roomMembers, clients, cfg.messages, time.Until(outageEnd)*5/6, posted)
	time.Sleep(time.Until(outageEnd))
	roomIndex := make(map[string]int, cfg.rooms)
	for r := range cfg.rooms {
		roomIndex[RoomID(r)] = r
	}

	// The storm: all at once.
	cpuBefore, clientsBefore := server.cpu(b), CPUTime()
	var (
		mu       sync.Mutex
		result   stormResult
		errs     atomic.Int64
		wrong    atomic.Int64
		errTexts sync.Map
	)
	result.catchUp = make([]time.Duration, len(clients))
	release := make(chan struct{})
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-release
			began := time.Now()
			got, totals, onConn, connected, failed := c.catchUp(ctx, apis[i%addresses], streams[i%addresses], server)
			result.catchUp[i] = time.Since(began)
			mu.Lock()
			result.syncTotal = append(result.syncTotal, totals...)
			result.syncOnConn = append(result.syncOnConn, onConn...)
			result.streamOpen = append(result.streamOpen, connected.streamOpen)
			result.subscribe = append(result.subscribe, connected.subscribe)
			mu.Unlock()
			for _, err := range failed {
				errs.Add(1)
				errTexts.LoadOrStore(stormErrorKind(err), err.Error())
			}
			want := int64(0)
			for _, room := range c.rooms {
				want += posted[roomIndex[room]].Load()
			}
			if int64(got) != want {
				wrong.Add(1)
			}
		}()
	}
	if path := os.Getenv("PBCHAT_STORM_PROFILE"); path != "" {
		// The storm alone (with PBCHAT_STORM_INPROCESS: the server's CPU too).
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	stormStart := time.Now()
	close(release)
	wg.Wait()
	for _, d := range result.catchUp {
		result.allCaughtUp = max(result.allCaughtUp, d)
	}
	cpuAfter, clientsAfter := server.cpu(b), CPUTime()
	for _, c := range clients {
		c.cancel()
	}
	result.errors = int(errs.Load())

	totalPosted := int64(0)
	for r := range posted {
		totalPosted += posted[r].Load()
	}
	b.Logf("storm: %d clients reconnected, subscribed and synced after a %s outage with %d messages posted into their rooms (%d missed per client on average)",
		len(clients), cfg.outage, totalPosted, totalPosted*50/int64(len(clients)))
	clientCPU := "(in the server's)"
	if server.proc != nil {
		clientCPU = (clientsAfter - clientsBefore).Round(time.Millisecond).String()
	}
	b.Logf("all caught up after %s (target ≤ 10 s); wall time of the storm %s; CPU: server %s, clients %s",
		result.allCaughtUp.Round(time.Millisecond), time.Since(stormStart).Round(time.Millisecond), (cpuAfter - cpuBefore).Round(time.Millisecond), clientCPU)
	b.Logf("catch-up per client: p50 %s, p99 %s; sync request on its connection: p50 %s, p99 %s (with the wait for a pooled connection: p50 %s, p99 %s), %d requests",
		Percentile(result.catchUp, 50).Round(time.Millisecond), Percentile(result.catchUp, 99).Round(time.Millisecond),
		Percentile(result.syncOnConn, 50).Round(time.Millisecond), Percentile(result.syncOnConn, 99).Round(time.Millisecond),
		Percentile(result.syncTotal, 50).Round(time.Millisecond), Percentile(result.syncTotal, 99).Round(time.Millisecond), len(result.syncOnConn))
	b.Logf("reconnect: stream open until PB_CONNECT p50 %s, p99 %s; subscribe request on its connection p50 %s, p99 %s",
		Percentile(result.streamOpen, 50).Round(time.Millisecond), Percentile(result.streamOpen, 99).Round(time.Millisecond),
		Percentile(result.subscribe, 50).Round(time.Millisecond), Percentile(result.subscribe, 99).Round(time.Millisecond))
	b.Logf("errors (retried): %d; clients whose sync did not hold exactly the messages of their rooms: %d", result.errors, wrong.Load())
	errTexts.Range(func(k, v any) bool { b.Logf("  %s: e.g. %s", k, v); return true })
	if wrong.Load() > 0 {
		b.Errorf("%d clients did not get exactly the messages posted into their rooms", wrong.Load())
	}
	return result
}

// prepareStormData writes the users and rooms (each user in 5 rooms of 50
// members) and returns the clients with their tokens and rooms, and each
// room's members.
func prepareStormData(b *testing.B, dir string, cfg stormConfig) ([]*stormClient, [][]int) {
	b.Helper()
	app, err := NewApp(dir, KindPbchat)
	if err != nil {
		b.Fatal(err)
	}
	defer app.Close()
	if err := InsertUsers(app.App, 0, cfg.clients); err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 11))
	members := make([][]int, cfg.rooms)
	clients := make([]*stormClient, cfg.clients)
	groups := 5
	perGroup := cfg.rooms / groups
	for g := 0; g < groups; g++ {
		for i, u := range rng.Perm(cfg.clients) {
			r := g*perGroup + i%max(perGroup, 1)
			members[r] = append(members[r], u)
		}
	}
	ids := make([]string, cfg.clients)
	for u := range ids {
		ids[u] = UserID(u)
		clients[u] = &stormClient{}
	}
	for r, list := range members {
		if len(list) == 0 {
			continue
		}
		users := make([]string, len(list))
		for i, u := range list {
			users[i] = ids[u]
			clients[u].rooms = append(clients[u].rooms, RoomID(r))
		}
		if err := InsertRoom(app.App, RoomID(r), users, pbDate(time.Now())); err != nil {
			b.Fatal(err)
		}
	}
	tokens, err := app.Tokens(ids)
	if err != nil {
		b.Fatal(err)
	}
	for u, c := range clients {
		c.token = tokens[ids[u]]
	}
	return clients, members
}

type stormServer struct {
	proc *clusterProc // nil: in this process
	url  string
}

// startStormServer serves dir with the pbchat binary, or in this process
// when PBCHAT_STORM_INPROCESS is set (for a CPU profile of the server with
// -cpuprofile; at most ~5,000 clients then, for the open files).
func startStormServer(b *testing.B, dir string) *stormServer {
	b.Helper()
	if os.Getenv("PBCHAT_STORM_INPROCESS") != "" {
		app, err := NewApp(dir, KindPbchat)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(app.Close)
		return &stormServer{url: app.URL}
	}
	p := startProc(b, buildPbchat(b), "writer", nil, "serve", "--dir", dir)
	return &stormServer{proc: p, url: p.url}
}

// cpu is the server's CPU time so far (this process's when in process).
func (s *stormServer) cpu(b *testing.B) time.Duration {
	if s.proc == nil {
		return CPUTime()
	}
	return procsCPU(b, []*clusterProc{s.proc})[0]
}

// connect opens the client's realtime stream and subscribes it.
func (c *stormClient) connect(ctx context.Context, api, stream *http.Client, s *stormServer) (stormConnectTiming, error) {
	var timing stormConnectTiming
	began := time.Now()
	streamCtx, cancel := context.WithCancel(ctx)
	req, _ := http.NewRequestWithContext(streamCtx, http.MethodGet, s.url+"/api/realtime", nil)
	res, err := stream.Do(req)
	if err != nil {
		cancel()
		return timing, fmt.Errorf("connect: %w", err)
	}
	if res.StatusCode != http.StatusOK {
		res.Body.Close()
		cancel()
		return timing, fmt.Errorf("connect: status %d", res.StatusCode)
	}
	reader := bufio.NewReaderSize(res.Body, 4096)
	clientID := ""
	for clientID == "" {
		line, err := reader.ReadString('\n')
		if err != nil {
			res.Body.Close()
			cancel()
			return timing, fmt.Errorf("PB_CONNECT: %w", err)
		}
		if rest, ok := strings.CutPrefix(line, `data:{"clientId":"`); ok {
			clientID, _, _ = strings.Cut(rest, `"`)
		}
	}
	timing.streamOpen = time.Since(began)
	c.cancel, c.closed = cancel, make(chan struct{})
	go func() {
		defer close(c.closed)
		defer res.Body.Close()
		for {
			if _, err := reader.ReadString('\n'); err != nil {
				return
			}
		}
	}()
	subs := []string{"chat_messages/*"}
	for _, room := range c.rooms {
		subs = append(subs, "chat/rooms/"+room)
	}
	body, _ := json.Marshal(map[string]any{"clientId": clientID, "subscriptions": subs})
	var gotConn time.Time
	trace := &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) { gotConn = time.Now() }}
	status, out, err := Call(httptrace.WithClientTrace(ctx, trace), api, http.MethodPost, s.url+"/api/realtime", c.token, body)
	if err != nil || status != http.StatusNoContent {
		cancel()
		return timing, fmt.Errorf("subscribe: %d %s %v", status, truncate(out, 200), err)
	}
	timing.subscribe = time.Since(gotConn)
	return timing, nil
}

// catchUp is what an app does after a reconnect: connect, subscribe, sync
// from its cursor until nothing more is waiting. Steps that fail are
// retried after a short pause; the failures are returned. got counts the
// message.created events the sync returned.
func (c *stormClient) catchUp(ctx context.Context, api, stream *http.Client, s *stormServer) (got int, totals, onConn []time.Duration, connected stormConnectTiming, failed []error) {
	for ctx.Err() == nil {
		var err error
		if connected, err = c.connect(ctx, api, stream, s); err != nil {
			failed = append(failed, err)
			time.Sleep(time.Duration(200+rand.IntN(300)) * time.Millisecond)
			continue
		}
		break
	}
	for ctx.Err() == nil {
		var answer stormSync
		began := time.Now()
		onConnection, err := stormGetSync(ctx, api, s, c.token, c.cursor, &answer)
		if err != nil {
			failed = append(failed, err)
			time.Sleep(time.Duration(200+rand.IntN(300)) * time.Millisecond)
			continue
		}
		totals = append(totals, time.Since(began))
		onConn = append(onConn, onConnection)
		for _, ev := range answer.Events {
			if ev.Type == "message.created" {
				got++
			}
		}
		c.cursor = answer.Cursor
		if answer.Reset {
			failed = append(failed, errors.New("sync: reset"))
			return got, totals, onConn, connected, failed
		}
		if !answer.More {
			break
		}
	}
	return got, totals, onConn, connected, failed
}

type stormSync struct {
	Cursor string `json:"cursor"`
	More   bool   `json:"more"`
	Reset  bool   `json:"reset"`
	Events []struct {
		Type string `json:"type"`
	} `json:"events"`
}

// stormGetSync asks GET /api/chat/sync and returns the time the request
// took on its connection (from having one to the end of the answer).
func stormGetSync(ctx context.Context, api *http.Client, s *stormServer, token, since string, out *stormSync) (time.Duration, error) {
	var gotConn time.Time
	trace := &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) { gotConn = time.Now() }}
	path := "/api/chat/sync"
	if since != "" {
		path += "?since=" + url.QueryEscape(since)
	}
	status, body, err := Call(httptrace.WithClientTrace(ctx, trace), api, http.MethodGet, s.url+path, token, nil)
	onConn := time.Since(gotConn)
	if err != nil {
		return 0, fmt.Errorf("sync: %w", err)
	}
	if status != http.StatusOK {
		return 0, fmt.Errorf("sync: status %d %s", status, truncate(body, 200))
	}
	return onConn, json.Unmarshal(body, out)
}

// stormPost posts n messages over d into random rooms, each by one of the
// room's members, and counts them per room.
func stormPost(b *testing.B, api *http.Client, s *stormServer, members [][]int, clients []*stormClient, n int, d time.Duration, posted []atomic.Int64) {
	b.Helper()
	const writers = 16
	interval := d * writers / time.Duration(max(n, 1))
	var next atomic.Int64
	var failed atomic.Int64
	var wg sync.WaitGroup
	began := time.Now()
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 99))
			for k := 0; ; k++ {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				r := rng.IntN(len(members))
				author := members[r][rng.IntN(len(members[r]))]
				body, _ := json.Marshal(map[string]any{"room": RoomID(r), "text": fmt.Sprintf("storm %d", i)})
				status, _, err := Call(context.Background(), api, http.MethodPost, s.url+"/api/collections/chat_messages/records", clients[author].token, body)
				if err != nil || status != http.StatusOK {
					failed.Add(1)
				} else {
					posted[r].Add(1)
				}
				time.Sleep(time.Until(began.Add(time.Duration(k+1) * interval)))
			}
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		b.Fatalf("%d of %d posts failed", failed.Load(), n)
	}
	b.Logf("%d messages posted in %s while the clients were away", n, time.Since(began).Round(time.Millisecond))
}

// stormEach runs f(0..n-1) on workers goroutines.
func stormEach(n, workers int, f func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				f(i)
			}
		}()
	}
	wg.Wait()
}

// stormErrorKind groups errors by their first words.
func stormErrorKind(err error) string {
	text := err.Error()
	if i := strings.IndexAny(text, "0123456789"); i > 0 {
		text = text[:i]
	}
	return strings.TrimSpace(text)
}
