package e2e

// A bounded soak on loopback: S users (default 200) each send a message,
// read their room, react and mark it read in a loop, while C realtime
// connections (default 1000: five per user) follow their rooms; the default
// per-user rate limits stay on. It checks that no request fails (no 5xx, no
// transport error), that every message event reaches every connection that
// follows the room, and that goroutines and memory measured idle after a
// warm-up and idle after the soak stay within stated bounds.
//
// It runs only when PBCHAT_SOAK is set to a duration:
//
//	PBCHAT_SOAK=2m go test ./e2e -run '^TestSoak$' -count=1 -v -timeout 30m
//
// PBCHAT_SOAK_SENDERS and PBCHAT_SOAK_SSE change the load; with
// PBCHAT_SOAK_REPORT=file the figures are also written there as Markdown.

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pocketbase/pocketbase/core"

	"github.com/pbchat/pbchat/chatmodule"
	"github.com/pbchat/pbchat/internal/chattest"
)

// Bounds the soak holds the server to, idle after the soak vs idle after
// the warm-up (same connections open).
const (
	soakGoroutineSlack = 50       // goroutines
	soakHeapSlack      = 32 << 20 // bytes of live heap, plus…
	soakHeapFactor     = 1.25     // …25%
	soakRSSSlack       = 96 << 20 // bytes of resident memory (SQLite's page cache is 32 MB)
	soakRoomSize       = 10
	soakConnsPerUser   = 5
	soakMessageEvents  = soakRoomSize * (soakConnsPerUser + 1) // topic events on every connection, plus one stock subscription per user
)

type soakSample struct {
	at         time.Duration
	goroutines int
	heap       uint64 // HeapInuse after GC
	rss        uint64
}

func takeSoakSample(start time.Time) soakSample {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return soakSample{at: time.Since(start).Round(time.Second), goroutines: runtime.NumGoroutine(), heap: m.HeapInuse, rss: soakRSS()}
}

func soakRSS() uint64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

type soakStats struct {
	mu        sync.Mutex
	latencies map[string][]time.Duration
	statuses  map[int]int
	failures  []string

	sent     atomic.Int64 // messages acknowledged
	expected atomic.Int64 // message events due to connections
	received atomic.Int64 // message events received
}

func (s *soakStats) record(kind string, d time.Duration, status int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latencies[kind] = append(s.latencies[kind], d)
	if err != nil {
		s.failures = append(s.failures, fmt.Sprintf("%s: %v", kind, err))
		return
	}
	s.statuses[status]++
	if status >= 500 {
		s.failures = append(s.failures, fmt.Sprintf("%s: status %d", kind, status))
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func TestSoak(t *testing.T) {
	raw := os.Getenv("PBCHAT_SOAK")
	if raw == "" || testing.Short() {
		t.Skip("set PBCHAT_SOAK to a duration (e.g. 2m) to run the soak")
	}
	duration, err := time.ParseDuration(raw)
	if err != nil {
		t.Fatalf("PBCHAT_SOAK=%q: %v", raw, err)
	}
	senders := envInt("PBCHAT_SOAK_SENDERS", 200)
	conns := envInt("PBCHAT_SOAK_SSE", 1000)
	senders -= senders % soakRoomSize
	warmup := max(duration/5, 15*time.Second)

	// The defaults, rate limits included, but for realtime connects: every
	// connection here comes from 127.0.0.1 (the default allows 120 a minute per IP).
	env := chattest.New(t, chatmodule.Config{RateLimits: chatmodule.RateLimits{
		RealtimeConnects: chatmodule.RateLimit{MaxRequests: 1 << 20, Duration: time.Minute},
	}})
	start := time.Now()

	// Users in rooms of soakRoomSize (set up in Go: it is not under test).
	users := make([]*chattest.User, senders)
	rooms := make([]string, senders/soakRoomSize)
	roomOf := make([]string, senders)
	for i := range users {
		users[i] = env.NewUser(fmt.Sprintf("soak%04d", i))
	}
	roomsCollection, _ := env.App.FindCollectionByNameOrId("chat_rooms")
	membersCollection, _ := env.App.FindCollectionByNameOrId("chat_room_users")
	for r := range rooms {
		room := core.NewRecord(roomsCollection)
		room.Set("type", "group")
		room.Set("name", fmt.Sprintf("soak room %d", r))
		room.Set("created_by", users[r*soakRoomSize].ID())
		if err := env.App.Save(room); err != nil {
			t.Fatal(err)
		}
		rooms[r] = room.Id
		for i := r * soakRoomSize; i < (r+1)*soakRoomSize; i++ {
			roomOf[i] = room.Id
			if i == r*soakRoomSize {
				continue // the creator is a member already
			}
			m := core.NewRecord(membersCollection)
			m.Set("room", room.Id)
			m.Set("user", users[i].ID())
			m.Set("permissions", []string{"can_create_messages", "can_edit_own_messages", "can_delete_own_messages"})
			if err := env.App.Save(m); err != nil {
				t.Fatal(err)
			}
		}
	}

	// Realtime: conns connections round-robin over the users; each follows
	// its room's topic, and each user's first one also chat_messages/*.
	stats := &soakStats{latencies: map[string][]time.Duration{}, statuses: map[int]int{}}
	followers := map[string]int64{} // room → message events due per message
	var drainers sync.WaitGroup
	sseTransport := http.DefaultTransport.(*http.Transport).Clone()
	sseClient := &http.Client{Transport: sseTransport}
	client := newPBClient(env.Server.URL)
	var closers []func()
	defer func() {
		for _, c := range closers {
			c()
		}
		drainers.Wait()
	}()
	for i := 0; i < conns; i++ {
		u := i % senders
		subs := []string{"chat/rooms/" + roomOf[u]}
		followers[roomOf[u]]++
		if i < senders {
			subs = append(subs, "chat_messages/*")
			followers[roomOf[u]]++
		}
		closers = append(closers, soakConnect(t, sseClient, client, users[u].Token, subs, &stats.received, &drainers))
	}
	t.Logf("setup: %d users in %d rooms, %d realtime connections, in %s", senders, len(rooms), conns, time.Since(start).Round(time.Second))

	transport := client.http.Transport.(*http.Transport)
	timed := func(kind string, fn func() (*pbResponse, error)) *pbResponse {
		t0 := time.Now()
		res, err := fn()
		status := 0
		if res != nil {
			status = res.Status
		}
		stats.record(kind, time.Since(t0), status, err)
		return res
	}

	// load runs every sender for d: post, read the room, every 4th round
	// react, every 5th mark read and fetch unread counts and the room list.
	// Each sender waits about a second between rounds, under the default
	// per-user limits (50 messages / 10s).
	load := func(d time.Duration) {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		var wg sync.WaitGroup
		for s := range users {
			wg.Add(1)
			go func(s int) {
				defer wg.Done()
				token, room := users[s].Token, roomOf[s]
				tick := time.NewTicker(time.Second + time.Duration(s%10)*10*time.Millisecond)
				defer tick.Stop()
				for i := 0; ; i++ {
					select {
					case <-ctx.Done():
						return
					case <-tick.C:
					}
					bg := context.Background() // a started round finishes
					res := timed("post message", func() (*pbResponse, error) {
						return client.do(bg, token, http.MethodPost, advMessagesURL, map[string]any{"room": room, "text": fmt.Sprintf("soak %d %d", s, i)})
					})
					if res != nil && res.Status == http.StatusOK {
						stats.sent.Add(1)
						stats.expected.Add(followers[room])
						if i%4 == 0 {
							msg := res.Str("id")
							timed("react", func() (*pbResponse, error) {
								return client.do(bg, token, http.MethodPost, advReactionsURL, map[string]any{"message": msg, "reaction": "👍"})
							})
						}
					}
					timed("list messages", func() (*pbResponse, error) {
						return client.do(bg, token, http.MethodGet, advMessagesURL+"?perPage=20&sort=-created&filter="+url.QueryEscape("room = '"+room+"'"), nil)
					})
					if i%5 == 0 {
						timed("mark read", func() (*pbResponse, error) {
							return client.do(bg, token, http.MethodPost, "/api/chat/rooms/"+room+"/read", nil)
						})
						timed("unread", func() (*pbResponse, error) { return client.do(bg, token, http.MethodGet, "/api/chat/unread", nil) })
						timed("rooms overview", func() (*pbResponse, error) { return client.do(bg, token, http.MethodGet, "/api/chat/rooms", nil) })
					}
				}
			}(s)
		}
		wg.Wait()
	}

	// quiesce waits for every due event, closes idle HTTP connections and
	// waits for the goroutine count to settle, then samples.
	quiesce := func(what string) soakSample {
		deadline := time.Now().Add(2 * time.Minute)
		for stats.received.Load() < stats.expected.Load() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d of %d message events delivered", what, stats.received.Load(), stats.expected.Load())
			}
			time.Sleep(10 * time.Millisecond) // waiting for delivery, not an assertion
		}
		transport.CloseIdleConnections()
		last, stable := -1, 0
		for stable < 10 && time.Now().Before(deadline) {
			n := runtime.NumGoroutine()
			if n == last {
				stable++
			} else {
				last, stable = n, 0
			}
			time.Sleep(100 * time.Millisecond) // waiting for closed connections' goroutines to end
		}
		return takeSoakSample(start)
	}

	load(warmup)
	base := quiesce("warm-up")
	warmSent, warmStatuses := stats.sent.Load(), len(stats.latencies["post message"])
	t.Logf("after warm-up (%s): %d goroutines, heap %s, RSS %s", warmup, base.goroutines, mib(base.heap), mib(base.rss))

	// The soak itself, sampled every 10s under load.
	samples := []soakSample{base}
	soakStart := time.Now()
	done := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		tick := time.NewTicker(10 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				s := takeSoakSample(start)
				stats.mu.Lock()
				samples = append(samples, s)
				stats.mu.Unlock()
			}
		}
	}()
	load(duration)
	close(done)
	sampler.Wait()
	soakTime := time.Since(soakStart)
	end := quiesce("soak")
	samples = append(samples, end)

	// Figures.
	stats.mu.Lock()
	defer stats.mu.Unlock()
	var report strings.Builder
	total := 0
	for _, l := range stats.latencies {
		total += len(l)
	}
	fmt.Fprintf(&report, "Run: %s soak after a %s warm-up, %d users sending and reading (%d rooms of %d), %d realtime connections, default Config (per-user rate limits on), GOMAXPROCS=%d, %s.\n\n",
		duration, warmup, senders, len(rooms), soakRoomSize, conns, runtime.GOMAXPROCS(0), runtime.Version())
	fmt.Fprintf(&report, "| | |\n|---|---|\n")
	fmt.Fprintf(&report, "| requests | %d (%.0f/s over the soak) |\n", total, float64(total-warmStatuses)/soakTime.Seconds())
	fmt.Fprintf(&report, "| messages sent | %d (%.0f/s) |\n", stats.sent.Load(), float64(stats.sent.Load()-warmSent)/soakTime.Seconds())
	fmt.Fprintf(&report, "| message events delivered | %d of %d due |\n", stats.received.Load(), stats.expected.Load())
	fmt.Fprintf(&report, "| answers by status | %v |\n", stats.statuses)
	fmt.Fprintf(&report, "| 5xx / transport errors | %d |\n", len(stats.failures))
	fmt.Fprintf(&report, "| goroutines idle after warm-up → after soak | %d → %d (bound +%d) |\n", base.goroutines, end.goroutines, soakGoroutineSlack)
	fmt.Fprintf(&report, "| heap in use after GC | %s → %s (bound ×%.2f + %s) |\n", mib(base.heap), mib(end.heap), soakHeapFactor, mib(soakHeapSlack))
	fmt.Fprintf(&report, "| resident memory | %s → %s (bound +%s) |\n\n", mib(base.rss), mib(end.rss), mib(soakRSSSlack))
	fmt.Fprintf(&report, "| request | count | p50 | p95 | p99 | max |\n|---|---|---|---|---|---|\n")
	kinds := make([]string, 0, len(stats.latencies))
	for k := range stats.latencies {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	for _, k := range kinds {
		l := slices.Clone(stats.latencies[k])
		slices.Sort(l)
		fmt.Fprintf(&report, "| %s | %d | %s | %s | %s | %s |\n", k, len(l), pct(l, 50), pct(l, 95), pct(l, 99), l[len(l)-1].Round(time.Millisecond))
	}
	fmt.Fprintf(&report, "\nUnder load, every 10 s (goroutines include in-flight requests and both ends of every connection; the test's clients run in the same process):\n\n| t | goroutines | heap in use | RSS |\n|---|---|---|---|\n")
	for _, s := range samples {
		fmt.Fprintf(&report, "| %s | %d | %s | %s |\n", s.at, s.goroutines, mib(s.heap), mib(s.rss))
	}
	t.Log("\n" + report.String())
	if path := os.Getenv("PBCHAT_SOAK_REPORT"); path != "" {
		if err := os.WriteFile(path, []byte(report.String()), 0o644); err != nil {
			t.Error(err)
		}
	}

	// Verdicts.
	if len(stats.failures) > 0 {
		t.Errorf("%d failed requests, first: %v", len(stats.failures), stats.failures[:min(5, len(stats.failures))])
	}
	if stats.received.Load() != stats.expected.Load() {
		t.Errorf("message events: %d delivered, %d due", stats.received.Load(), stats.expected.Load())
	}
	if end.goroutines > base.goroutines+soakGoroutineSlack {
		t.Errorf("goroutines grew from %d to %d (bound +%d)", base.goroutines, end.goroutines, soakGoroutineSlack)
	}
	if float64(end.heap) > float64(base.heap)*soakHeapFactor+soakHeapSlack {
		t.Errorf("heap grew from %s to %s", mib(base.heap), mib(end.heap))
	}
	if end.rss > base.rss+soakRSSSlack {
		t.Errorf("RSS grew from %s to %s", mib(base.rss), mib(end.rss))
	}
	if stats.sent.Load() == 0 {
		t.Errorf("no message was sent")
	}
}

func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))].Round(100 * time.Microsecond)
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// soakConnect opens a realtime connection as PocketBase's SDKs do (GET
// /api/realtime, read PB_CONNECT's clientId, POST the subscriptions) and
// counts message events in the background. A lean reader: chattest's SSE
// keeps a 1 MiB buffer per connection, which would dwarf the server's own
// memory in the figures.
func soakConnect(t *testing.T, httpClient *http.Client, api *pbClient, token string, subs []string, received *atomic.Int64, drainers *sync.WaitGroup) (closeConn func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, api.base+"/api/realtime", nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := httpClient.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("realtime connect: %v", err)
	}
	reader := bufio.NewReaderSize(res.Body, 4096)
	clientID := ""
	for clientID == "" {
		line, err := reader.ReadString('\n')
		if err != nil {
			cancel()
			t.Fatalf("realtime: no PB_CONNECT: %v", err)
		}
		if rest, ok := strings.CutPrefix(line, "id:"); ok {
			clientID = strings.TrimSpace(rest)
		}
	}
	if r, err := api.do(context.Background(), token, http.MethodPost, "/api/realtime", map[string]any{"clientId": clientID, "subscriptions": subs}); err != nil || r.Status != http.StatusNoContent {
		cancel()
		t.Fatalf("subscribe: %v %v", r, err)
	}
	drainers.Add(1)
	go func() {
		defer drainers.Done()
		defer res.Body.Close()
		for {
			line, err := reader.ReadString('\n')
			if err != nil {
				return
			}
			if strings.HasPrefix(line, "data:") && (strings.Contains(line, `"type":"message.created"`) || strings.Contains(line, `"action":"create"`)) {
				received.Add(1)
			}
		}
	}()
	return cancel
}
