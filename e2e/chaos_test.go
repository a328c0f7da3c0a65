package e2e

// TestChaos: nothing is missed, whatever goes wrong. SDK-like clients
// (chaos_client_test.go) follow their rooms with room topics and/or stock
// subscriptions while writers post, edit, delete, react, add and remove
// members and rename rooms; meanwhile connections are cut at random and the
// servers come and go (chaos_env_test.go): in one process the writer is
// killed and stopped; in a cluster (writer + two realtime nodes over a real
// NATS server) a node restarts, NATS is away for 10 s and the writer is
// killed. At the end, after a final sync, every client's state equals the
// database's, and no client ever held an event of a room it was not a
// member of at that event's position in the log.
//
// It runs in `go test ./e2e` (about 30 s per topology; skipped with -short).
// PBCHAT_CHAOS sets the length of the chaos, per topology, for a longer run:
//
//	PBCHAT_CHAOS=5m go test ./e2e -run '^TestChaos$' -count=1 -v -timeout 30m
//
// PBCHAT_CHAOS_LOGS=DIR keeps the writer's data dir (its logs are in
// auxiliary.db) and the nodes' logs there. A mismatch prints the record's
// log rows, the client's timeline around them (events by cursor: t room
// topic, s stock, y sync; [C] caught up, [X] disconnected, [Y]/[Z] sync
// from/to, [L] room loaded) and which members got the change, per endpoint.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

type chaosConfig struct {
	duration       time.Duration // of the chaos, per topology
	clients        int
	rooms          int
	roomsPerClient int
	writers        int
	cutEvery       time.Duration
}

func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("the chaos test runs servers for a while")
	}
	raw := os.Getenv("PBCHAT_CHAOS")
	cfg := chaosConfig{duration: chaosCycle, clients: 60, rooms: 20, roomsPerClient: 12, writers: 4, cutEvery: 250 * time.Millisecond}
	if raw != "" {
		d, err := time.ParseDuration(raw)
		if err != nil || d <= 0 {
			t.Fatalf("PBCHAT_CHAOS=%q: a duration such as 5m", raw)
		}
		cfg.duration = d
	}
	for _, topology := range []string{"one-process", "cluster"} {
		t.Run(topology, func(t *testing.T) { runChaos(t, cfg, topology == "cluster") })
	}
}

func runChaos(t *testing.T, cfg chaosConfig, cluster bool) {
	phase := time.Now()
	lap := func(what string) {
		t.Logf("%s: %s", what, time.Since(phase).Round(time.Millisecond))
		phase = time.Now()
	}
	w := newChaosWorld(t, cluster)
	lap("servers up")
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 256
	api := &http.Client{Transport: transport, Timeout: 15 * time.Second}
	// One TCP connection per realtime stream, never reused after a cut.
	streams := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, DisableCompression: true}}

	model := chaosSetup(t, w.writer.url, api, cfg)
	lap("users, rooms and members")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	endpoints := w.endpoints()
	clients := make([]*chaosClient, cfg.clients)
	for i := range clients {
		clients[i] = newChaosClient(i, model.users[i], chaosKind(i%3), endpoints[(i/3)%len(endpoints)], w.writer.url, api, streams)
		clients[i].began = w.began
		if err := clients[i].start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if lagging := chaosWaitReady(clients, time.Minute); len(lagging) > 0 {
		t.Fatalf("clients %v never connected", lagging)
	}
	lap("clients connected")

	// The chaos.
	var (
		writes   chaosWrites
		restarts chaosRestarts
		cuts     atomic.Int64
		wg       sync.WaitGroup
		errs     = make(chan error, 1)
	)
	began := time.Now()
	end := began.Add(cfg.duration)
	chaosCtx, stopChaos := context.WithDeadline(ctx, end)
	defer stopChaos()
	for i := 0; i < cfg.writers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			chaosWriter(chaosCtx, model, api, w.writer.url, uint64(i+1), &writes)
		}()
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		for chaosCtx.Err() == nil {
			if clients[rand.IntN(len(clients))].cut() {
				cuts.Add(1)
			}
			chaosSleep(chaosCtx, int(cfg.cutEvery/time.Millisecond))
		}
	}()
	go func() {
		defer wg.Done()
		if err := w.runSchedule(end, &restarts); err != nil {
			errs <- err
		}
	}()
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatalf("the schedule: %v", err)
	default:
	}
	chaosTime := time.Since(began)
	lap("chaos")

	// The end: everyone back, a final sync, the state handed over.
	if lagging := chaosWaitReady(clients, time.Minute); len(lagging) > 0 {
		t.Errorf("clients %v did not reconnect within a minute after the chaos", lagging)
	}
	time.Sleep(time.Second) // events in flight land
	finals := make([]chaosFinal, len(clients))
	var fwg sync.WaitGroup
	for i, c := range clients {
		fwg.Add(1)
		go func() {
			defer fwg.Done()
			reply := make(chan chaosFinal, 1)
			select {
			case c.final <- reply:
				finals[i] = <-reply
			case <-time.After(time.Minute):
				finals[i] = chaosFinal{err: fmt.Errorf("client %d: no final sync within a minute", i)}
			}
		}()
	}
	fwg.Wait()
	cancel()
	for _, c := range clients {
		<-c.done
	}
	w.writer.signal(syscall.SIGTERM)
	truth, err := chaosReadTruth(w.writer.dir)
	if err != nil {
		t.Fatalf("read the database: %v", err)
	}
	lap("final sync")

	// The verdicts.
	var total chaosStats
	mismatches, leaks, misplaced, held, cascadeNoCursor := 0, 0, 0, 0, 0
	for i, c := range clients {
		s := c.stats
		total.realtime += s.realtime
		total.synced += s.synced
		total.syncCalls += s.syncCalls
		total.loads += s.loads
		total.resets += s.resets
		total.cuts += s.cuts
		total.serverCloses += s.serverCloses
		total.connectFailures += s.connectFailures
		total.subscribeRetries += s.subscribeRetries
		total.stale += s.stale
		total.ignored += s.ignored
		total.unplaced += s.unplaced
		total.noCursor += s.noCursor
		total.finalApplied += s.finalApplied
		total.inversions += s.inversions
		for _, message := range s.cascadeNoCursor {
			if _, still := truth.msgRoom[message]; !still || truth.messageExists(message) {
				total.noCursor++
				t.Errorf("client %d: a reaction delete without a cursor, its message %s not deleted", i, message)
			} else {
				cascadeNoCursor++
			}
		}
		for _, e := range s.errors {
			t.Errorf("client %d (%s): %s", i, c.kind, e)
		}
		if finals[i].err != nil {
			t.Error(finals[i].err)
			mismatches++
			continue
		}
		if diffs, ids := chaosCompare(truth, c.user.id, finals[i].rooms); len(diffs) > 0 {
			mismatches++
			for _, d := range diffs[:min(len(diffs), 3)] {
				t.Errorf("client %d (%s, %s): %s", i, c.kind, c.endpoint, d)
			}
			for _, id := range ids[:min(len(ids), 2)] {
				t.Logf("client %d: %s", i, chaosTimeline(truth, c.held, id))
				t.Logf("client %d: who got the changes of %s: %s", i, id, chaosWhoGot(truth, clients, id))
			}
		}
		l, m, details := chaosLeaks(truth, c.user.id, c.held)
		leaks += l
		misplaced += m
		held += len(c.held)
		for _, d := range details {
			t.Errorf("client %d (%s, %s): %s", i, c.kind, c.endpoint, d)
		}
	}
	rooms := 0
	for _, c := range clients {
		rooms += len(truth.of[c.user.id])
	}

	topology := "one process"
	if cluster {
		topology = "writer + 2 realtime nodes + NATS"
	}
	t.Logf("chaos, %s: %d clients (topics/stock/both), %.1f rooms each at the end, %s of chaos", topology, len(clients), float64(rooms)/float64(len(clients)), chaosTime.Round(time.Second))
	t.Logf("writes: %d ok (%s), %d refused, %d failed (server away); event log: %d rows",
		writes.ok.Load(), writes.summary()[1:], writes.refused.Load(), writes.failed.Load(), truth.events)
	t.Logf("events: %d realtime + %d by sync (%d sync calls, %d resets), %d room loads; %d stale or duplicate, %d outside a loaded room; %d realtime events came after a later one",
		total.realtime, total.synced, total.syncCalls, total.resets, total.loads, total.stale, total.ignored, total.inversions)
	t.Logf("disconnects: %d cut by the test (%d cuts asked), %d ended by a server; %d failed connects, %d subscribe retries",
		total.cuts, cuts.Load(), total.serverCloses, total.connectFailures, total.subscribeRetries)
	t.Logf("restarts: writer killed %d, writer stopped %d, node restarted %d, NATS away 10 s %d",
		restarts.writerKills, restarts.writerStops, restarts.nodeRestarts, restarts.natsOutages)
	if t.Failed() || testing.Verbose() && len(w.actions) <= 6 {
		t.Logf("schedule (since the servers started): %s", strings.Join(w.actions, "; "))
	}
	t.Logf("final sync: %d changes applied; mismatches: %d of %d clients; leaks: %d of %d events held (%d cursors pointing elsewhere, %d without a cursor, %d unplaced)",
		total.finalApplied, mismatches, len(clients), leaks, held, misplaced, total.noCursor, total.unplaced)
	if cascadeNoCursor > 0 {
		t.Errorf("%d reaction.deleted events of deleted messages came without a cursor", cascadeNoCursor)
	}
	if leaks > 0 || misplaced > 0 || total.noCursor > 0 {
		t.Errorf("%d leaks, %d misplaced cursors, %d events without a cursor", leaks, misplaced, total.noCursor)
	}
}

// chaosSetup creates the users (signed in), the rooms (each owned by one of
// them) and the memberships: every user in roomsPerClient random rooms.
func chaosSetup(t *testing.T, base string, api *http.Client, cfg chaosConfig) *chaosModel {
	t.Helper()
	ctx := context.Background()
	call := func(token, method, path string, body any, want int) (map[string]any, error) {
		status, out, err := chaosDo(ctx, api, method, base+path, token, body)
		if err != nil || status != want {
			return nil, fmt.Errorf("%s %s: %d %v %v", method, path, status, out, err)
		}
		return out, nil
	}
	auth, err := call("", http.MethodPost, "/api/collections/_superusers/auth-with-password",
		map[string]any{"identity": chaosSuperEmail, "password": chaosSuperPassword}, http.StatusOK)
	if err != nil {
		t.Fatal(err)
	}
	super := auth["token"].(string)

	m := &chaosModel{users: make([]chaosUser, cfg.clients)}
	err = chaosParallel(cfg.clients, 8, func(i int) error {
		email := fmt.Sprintf("chaos%03d@example.com", i)
		rec, err := call(super, http.MethodPost, "/api/collections/users/records", map[string]any{
			"email": email, "password": "password-chaos", "passwordConfirm": "password-chaos", "verified": true, "name": fmt.Sprintf("chaos %d", i),
		}, http.StatusOK)
		if err != nil {
			return err
		}
		auth, err := call("", http.MethodPost, "/api/collections/users/auth-with-password",
			map[string]any{"identity": email, "password": "password-chaos"}, http.StatusOK)
		if err != nil {
			return err
		}
		m.users[i] = chaosUser{id: rec["id"].(string), email: email, token: auth["token"].(string)}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	for i := 0; i < cfg.rooms; i++ {
		owner := i % cfg.clients
		rec, err := call(m.users[owner].token, http.MethodPost, "/api/collections/chat_rooms/records",
			map[string]any{"type": "group", "name": fmt.Sprintf("room %d", i)}, http.StatusOK)
		if err != nil {
			t.Fatal(err)
		}
		m.rooms = append(m.rooms, &chaosModelRoom{id: rec["id"].(string), owner: owner, members: map[int]string{owner: ""}})
	}
	type join struct{ room, user int }
	var joins []join
	rng := rand.New(rand.NewPCG(1, 2))
	for u := range m.users {
		for _, r := range rng.Perm(cfg.rooms) {
			if m.roomsOf(u) >= cfg.roomsPerClient {
				break
			}
			if _, in := m.rooms[r].members[u]; !in {
				m.rooms[r].members[u] = ""
				joins = append(joins, join{r, u})
			}
		}
	}
	var mu sync.Mutex
	err = chaosParallel(len(joins), 8, func(i int) error {
		j := joins[i]
		room := m.rooms[j.room]
		rec, err := call(m.users[room.owner].token, http.MethodPost, "/api/collections/chat_room_users/records",
			map[string]any{"room": room.id, "user": m.users[j.user].id, "permissions": advAllPermissions}, http.StatusOK)
		if err != nil {
			return err
		}
		mu.Lock()
		room.members[j.user] = rec["id"].(string)
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// chaosParallel runs f(0..n-1) on workers goroutines and returns the first error.
func chaosParallel(n, workers int, f func(i int) error) error {
	next := atomic.Int64{}
	var first atomic.Value
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || first.Load() != nil {
					return
				}
				if err := f(i); err != nil {
					first.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	wg.Wait()
	if err, ok := first.Load().(error); ok {
		return err
	}
	return nil
}

// chaosWaitReady waits until every client is connected and caught up and
// returns those that are not by the deadline.
func chaosWaitReady(clients []*chaosClient, within time.Duration) []int {
	deadline := time.Now().Add(within)
	for {
		var lagging []int
		for i, c := range clients {
			if !c.ready.Load() {
				lagging = append(lagging, i)
			}
		}
		if len(lagging) == 0 || time.Now().After(deadline) {
			return lagging
		}
		time.Sleep(50 * time.Millisecond) // polling, not an assertion
	}
}

// chaosWhoGot tells, for each log row of a record, how many of the clients
// that were members of its room then got it, per endpoint.
func chaosWhoGot(truth *chaosTruth, clients []*chaosClient, recordID string) string {
	out := ""
	for seq, row := range truth.log {
		if row.recordID != recordID {
			continue
		}
		live, synced, members := map[string]int{}, map[string]int{}, map[string]int{}
		for _, c := range clients {
			if !truth.memberAt(row.room, c.user.id, seq) {
				continue
			}
			members[c.endpoint]++
			gotLive, gotSync := false, false
			for _, h := range c.held {
				if h.seq == seq && !h.marker {
					gotLive = gotLive || h.src != 'y'
					gotSync = gotSync || h.src == 'y'
				}
			}
			if gotLive {
				live[c.endpoint]++
			} else if gotSync {
				synced[c.endpoint]++
			}
		}
		out += fmt.Sprintf(" %d %s (live+synced/members):", seq, row.typ)
		for endpoint, n := range members {
			out += fmt.Sprintf(" %s %d+%d/%d", endpoint, live[endpoint], synced[endpoint], n)
		}
		out += ";"
	}
	return out
}
