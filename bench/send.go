package bench

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pocketbase/pocketbase/tools/security"
	"github.com/pocketbase/pocketbase/tools/types"
)

// Send variants compared side by side.
const (
	SendPbchat = "pbchat"
	SendHand   = "hand-written rule"
	SendFloor  = "SQLite floor"
)

// SendConfig is the send scenario on one dataset.
type SendConfig struct {
	Pbchat, Stock *App
	Senders       []Sender
	Concurrency   []int
	Duration      time.Duration // per round and variant
	Rounds        int
	Log           func(string)
	// Profile, when set, wraps the last round of each variant at each
	// concurrency (a CPU profile per variant).
	Profile func(label string, fn func())
}

// SendResult is one (concurrency, variant) cell: medians over the rounds.
type SendResult struct {
	Concurrency int
	Variant     string
	Messages    int // over all rounds
	PerSecond   float64
	P50, P99    time.Duration
	CPUPerMsg   time.Duration // process CPU (server and in-process client) per message, background work after the round included
	Backlog     time.Duration // of CPUPerMsg: background work the round left (median round), e.g. notifications not yet fanned out
	Cores       float64       // CPU cores this process kept busy (median round)
	OtherCores  float64       // CPU cores other processes of the machine used meanwhile
	Errors      int
}

type sendRound struct {
	n        int
	errors   int
	elapsed  time.Duration
	cpu      time.Duration // the round's and its backlog's
	backlog  time.Duration // CPU used after the round until the process was idle again
	machine  time.Duration // CPU time of the whole machine
	lats     []time.Duration
	firstErr string
}

type sender struct {
	variant string
	client  *http.Client
	url     string
	tokens  []string
	bodies  func(worker, i int) []byte
	floor   *sql.Stmt
	senders []Sender
}

// RunSend measures messages per second and latency per concurrency.
func RunSend(cfg SendConfig) ([]SendResult, error) {
	pbTokens, err := cfg.Pbchat.Tokens(senderUsers(cfg.Senders))
	if err != nil {
		return nil, err
	}
	stockTokens, err := cfg.Stock.Tokens(senderUsers(cfg.Senders))
	if err != nil {
		return nil, err
	}
	maxConc := 0
	for _, c := range cfg.Concurrency {
		maxConc = max(maxConc, c)
	}
	floor, err := sqlDB(cfg.Pbchat.App).Prepare(`INSERT INTO chat_messages (id, room, user, text, edited_at, created, updated) VALUES (?,?,?,?,?,?,?)`)
	if err != nil {
		return nil, err
	}
	defer floor.Close()

	variants := []*sender{
		{variant: SendHand, client: HTTPClient(maxConc), url: cfg.Stock.URL + "/api/collections/chat_messages/records", senders: cfg.Senders,
			bodies: func(w, i int) []byte {
				s := cfg.Senders[w%len(cfg.Senders)]
				b, _ := json.Marshal(map[string]string{"room": s.Room, "user": s.User, "text": fmt.Sprintf("send %d/%d: hello there, how is it going?", w, i)})
				return b
			}},
		{variant: SendPbchat, client: HTTPClient(maxConc), url: cfg.Pbchat.URL + "/api/collections/chat_messages/records", senders: cfg.Senders,
			bodies: func(w, i int) []byte {
				s := cfg.Senders[w%len(cfg.Senders)]
				b, _ := json.Marshal(map[string]string{"room": s.Room, "text": fmt.Sprintf("send %d/%d: hello there, how is it going?", w, i)})
				return b
			}},
		{variant: SendFloor, floor: floor, senders: cfg.Senders},
	}
	for _, v := range variants[:2] {
		tokens := pbTokens
		if v.variant == SendHand {
			tokens = stockTokens
		}
		for _, s := range cfg.Senders {
			v.tokens = append(v.tokens, tokens[s.User])
		}
	}

	// Check the baseline's rule: a user who is not a member is refused.
	outsider := UserID(datasetUsers - 1)
	otherTokens, err := cfg.Stock.Tokens([]string{outsider})
	if err != nil {
		return nil, err
	}
	body, _ := json.Marshal(map[string]string{"room": cfg.Senders[0].Room, "user": outsider, "text": "not a member"})
	if status, out, err := Call(context.Background(), variants[0].client, http.MethodPost, variants[0].url, otherTokens[outsider], body); err != nil || status == http.StatusOK {
		if !isMember(cfg.Stock, cfg.Senders[0].Room, outsider) {
			return nil, fmt.Errorf("hand-written rule let a non-member post: %d %s %v", status, truncate(out, 200), err)
		}
	}

	var results []SendResult
	for _, conc := range cfg.Concurrency {
		rounds := map[string][]sendRound{}
		for r := 0; r < cfg.Rounds; r++ {
			order := []*sender{variants[r%3], variants[(r+1)%3], variants[(r+2)%3]}
			for _, v := range order {
				if r == 0 {
					v.run(conc, cfg.Duration/4) // warm-up: connections, caches, statement cache
				}
				var round sendRound
				if cfg.Profile != nil && r == cfg.Rounds-1 {
					cfg.Profile(fmt.Sprintf("send-c%d-%s", conc, strings.ReplaceAll(v.variant, " ", "-")), func() { round = v.run(conc, cfg.Duration) })
				} else {
					round = v.run(conc, cfg.Duration)
				}
				if round.errors > 0 && cfg.Log != nil {
					cfg.Log(fmt.Sprintf("  %s c=%d: %d errors, first: %s", v.variant, conc, round.errors, round.firstErr))
				}
				rounds[v.variant] = append(rounds[v.variant], round)
			}
		}
		for _, v := range variants {
			res := SendResult{Concurrency: conc, Variant: v.variant}
			var rates, p50s, p99s, cpus, backlogs, cores, others []float64
			for _, round := range rounds[v.variant] {
				cores = append(cores, (round.cpu-round.backlog).Seconds()/round.elapsed.Seconds()) // during the round
				others = append(others, max(round.machine-(round.cpu-round.backlog), 0).Seconds()/round.elapsed.Seconds())
				res.Messages += round.n
				res.Errors += round.errors
				rates = append(rates, float64(round.n)/round.elapsed.Seconds())
				p50s = append(p50s, float64(Percentile(round.lats, 50)))
				p99s = append(p99s, float64(Percentile(round.lats, 99)))
				cpus = append(cpus, float64(round.cpu)/float64(max(round.n, 1)))
				backlogs = append(backlogs, float64(round.backlog)/float64(max(round.n, 1)))
			}
			res.PerSecond = Median(rates)
			res.P50, res.P99 = time.Duration(Median(p50s)), time.Duration(Median(p99s))
			res.CPUPerMsg, res.Backlog = time.Duration(Median(cpus)), time.Duration(Median(backlogs))
			res.Cores, res.OtherCores = Median(cores), Median(others)
			results = append(results, res)
			if cfg.Log != nil {
				cfg.Log(fmt.Sprintf("  send c=%-2d %-18s %7.0f msg/s  p50 %6.2f ms  p99 %6.2f ms  cpu %6.0f µs/msg (backlog %.0f)  cores %.2f (others %.2f)", conc, v.variant, res.PerSecond, ms(res.P50), ms(res.P99), float64(res.CPUPerMsg.Microseconds()), float64(res.Backlog.Microseconds()), res.Cores, res.OtherCores))
			}
		}
	}
	return results, nil
}

func isMember(a *App, room, user string) bool {
	var n int
	_ = sqlDB(a.App).QueryRow(`SELECT count(*) FROM chat_room_users WHERE room = ? AND user = ?`, room, user).Scan(&n)
	return n > 0
}

func senderUsers(s []Sender) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x.User] {
			seen[x.User] = true
			out = append(out, x.User)
		}
	}
	return out
}

func (v *sender) run(conc int, d time.Duration) sendRound {
	var wg sync.WaitGroup
	var stop atomic.Bool
	lats := make([][]time.Duration, conc)
	errs := make([]int, conc)
	var firstErr atomic.Value
	cpu0, machine0 := CPUTime(), MachineBusy()
	start := time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := v.senders[w%len(v.senders)]
			for i := 0; !stop.Load(); i++ {
				t0 := time.Now()
				var err error
				if v.floor != nil {
					now := types.NowDateTime().String()
					_, err = v.floor.Exec(security.RandomStringWithAlphabet(15, "abcdefghijklmnopqrstuvwxyz0123456789"), s.Room, s.User,
						fmt.Sprintf("send %d/%d: hello there, how is it going?", w, i), "", now, now)
				} else {
					var status int
					var out []byte
					status, out, err = Call(context.Background(), v.client, http.MethodPost, v.url, v.tokens[w%len(v.tokens)], v.bodies(w, i))
					if err == nil && status != http.StatusOK {
						err = fmt.Errorf("%d %s", status, truncate(out, 200))
					}
				}
				if err != nil {
					errs[w]++
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				lats[w] = append(lats[w], time.Since(t0))
			}
		}()
	}
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	round := sendRound{elapsed: time.Since(start), cpu: CPUTime() - cpu0, machine: MachineBusy() - machine0}
	round.backlog = waitIdle(30 * time.Second)
	round.cpu += round.backlog
	for w := range lats {
		round.lats = append(round.lats, lats[w]...)
		round.errors += errs[w]
	}
	round.n = len(round.lats)
	round.firstErr, _ = firstErr.Load().(string)
	return round
}

// waitIdle waits until the process is idle again after a round and returns
// the CPU it used meanwhile: the work a variant leaves in the background
// (pbchat's notification fan-out and search index of the round's
// messages) is that round's cost, not the next variant's, which it would
// otherwise slow down and be charged to.
func waitIdle(limit time.Duration) time.Duration {
	const tick = 50 * time.Millisecond
	start := CPUTime()
	deadline := time.Now().Add(limit)
	prev, quiet := start, 0
	for quiet < 2 && time.Now().Before(deadline) {
		time.Sleep(tick)
		now := CPUTime()
		if now-prev < tick/20 {
			quiet++
		} else {
			quiet = 0
		}
		prev = now
	}
	return CPUTime() - start
}
