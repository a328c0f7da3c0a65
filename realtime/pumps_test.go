package realtime

import (
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pocketbase/pocketbase/tools/subscriptions"
)

// newPumpClient is a hub client on p whose connection is a channel the
// test reads (or leaves unread: its sends block, as a full socket does).
func newPumpClient(p *pumps) *client {
	return &client{pb: NewClient(), done: make(chan struct{}), pumps: p}
}

// next waits for the client's next event; "" when none comes in 30 s (the
// test then fails on what it got).
func next(pb subscriptions.Client) subscriptions.Message {
	select {
	case msg := <-pb.Channel():
		return msg
	case <-time.After(30 * time.Second):
		return subscriptions.Message{}
	}
}

func TestPumpsKeepEachClientsOrderUnderConcurrentPushes(t *testing.T) {
	const clients, pushers, perPusher = 20, 4, 200 // 800 queued at most: under outboxSize
	p := newPumps()
	p.size = 2 // fewer workers than clients: clients share them
	cs := make([]*client, clients)
	for i := range cs {
		cs[i] = newPumpClient(p)
	}

	var wg sync.WaitGroup
	for _, c := range cs {
		for pusher := range pushers {
			wg.Go(func() {
				for seq := range perPusher {
					msg := queued{Message: subscriptions.Message{Name: strconv.Itoa(pusher), Data: []byte(strconv.Itoa(seq))}}
					if !c.push(msg) {
						t.Errorf("push %d of pusher %d refused", seq, pusher)
						return
					}
				}
			})
		}
	}

	for i, c := range cs {
		last := map[string]int{}
		for range pushers * perPusher {
			msg := next(c.pb)
			if msg.Name == "" {
				t.Fatalf("client %d: got %v events per pusher, then nothing", i, last)
			}
			seq, _ := strconv.Atoi(string(msg.Data))
			if want, ok := last[msg.Name]; ok && seq != want+1 || !ok && seq != 0 {
				t.Fatalf("client %d: pusher %s's event %d after %d", i, msg.Name, seq, last[msg.Name])
			}
			last[msg.Name] = seq
		}
	}
	wg.Wait()
}

func TestPumpsABlockedClientDoesNotStopOthers(t *testing.T) {
	p := newPumps()
	p.size, p.stallAfter = 1, 5*time.Millisecond // the only worker gets stuck
	blocked, others := newPumpClient(p), []*client{newPumpClient(p), newPumpClient(p), newPumpClient(p)}
	defer blocked.pb.Discard()

	// The blocked client's connection takes nothing: its first event blocks
	// the worker that sends it, the second waits behind it.
	blocked.push(queued{Message: subscriptions.Message{Name: "blocked", Data: []byte("1")}})
	blocked.push(queued{Message: subscriptions.Message{Name: "blocked", Data: []byte("2")}})
	for round := range 3 {
		for i, c := range others {
			c.push(queued{Message: subscriptions.Message{Name: fmt.Sprint(i), Data: []byte(strconv.Itoa(round))}})
		}
		for i, c := range others {
			if got := next(c.pb); got.Name != fmt.Sprint(i) || string(got.Data) != strconv.Itoa(round) {
				t.Fatalf("client %d, round %d: got %q %q while another client is blocked", i, round, got.Name, got.Data)
			}
		}
	}

	// Once its peer reads, the blocked client gets both events, in order.
	for _, want := range []string{"1", "2"} {
		if got := next(blocked.pb); string(got.Data) != want {
			t.Fatalf("blocked client: got %q, want %q", got.Data, want)
		}
	}
}

func TestPumpsIdleClientsHoldNoGoroutine(t *testing.T) {
	p := newPumps()
	p.idleAfter = 10 * time.Millisecond
	cs := []*client{newPumpClient(p), newPumpClient(p)}
	for _, c := range cs {
		c.push(queued{Message: subscriptions.Message{Name: "e", Data: []byte("1")}})
	}
	for i, c := range cs {
		if got := next(c.pb); got.Name != "e" {
			t.Fatalf("client %d: no event", i)
		}
	}

	workers := func() (n int, pumping bool) {
		p.mu.Lock()
		n = len(p.workers)
		p.mu.Unlock()
		for _, c := range cs {
			c.queueMu.Lock()
			pumping = pumping || c.pumping || len(c.queue) > 0
			c.queueMu.Unlock()
		}
		return n, pumping
	}
	deadline := time.Now().Add(30 * time.Second)
	for n, pumping := workers(); n > 0 || pumping; n, pumping = workers() {
		if time.Now().After(deadline) {
			t.Fatalf("idle: %d pump workers left, a client still pumping: %v", n, pumping)
		}
		time.Sleep(5 * time.Millisecond)
	}

	// A client that gets an event after the workers ended still gets it.
	cs[0].push(queued{Message: subscriptions.Message{Name: "again", Data: []byte("2")}})
	if got := next(cs[0].pb); got.Name != "again" {
		t.Fatal("no event after the pump workers ended")
	}
}
