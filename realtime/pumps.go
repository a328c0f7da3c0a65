package realtime

import (
	"runtime"
	"sync"
	"time"
)

const (
	// pumpTurn is how many events a worker sends to one client before it
	// serves the next one: a client with a long backlog does not hold a
	// worker while others wait, and a worker that makes progress is seen to.
	pumpTurn = 64
	// pumpStallAfter is how long work may wait while a worker makes no
	// progress (a write blocked on a peer whose socket buffer is full, a
	// connection handler that does not read) before the pool adds a worker.
	pumpStallAfter = 20 * time.Millisecond
	// pumpIdleAfter is how long a worker with nothing to do waits before it
	// ends: a quiet hub holds no pump goroutine.
	pumpIdleAfter = time.Second
)

// pumps sends the clients' queued events with a few long-lived workers.
// Starting a goroutine per client that gets an event cost a fifth of the
// CPU of a fan-out (runtime.newproc1, gostartcall, gList.pop in the
// profile); a worker that stays for the next client costs a lock and, when
// it waited, a wake-up. A client is queued at most once (client.pumping)
// and served by one worker at a time, so its events keep their order.
type pumps struct {
	size       int // workers that keep delivering when none is stuck
	stallAfter time.Duration
	idleAfter  time.Duration

	mu       sync.Mutex
	queue    []*client // clients with events, oldest first, from head
	head     int
	workers  map[*pumpWorker]struct{}
	parked   []*pumpWorker // waiting for work, last parked first woken
	watching bool          // the stall check is armed
	watch    *time.Timer
}

type pumpWorker struct {
	wake   chan struct{} // signalled once per park, by whoever unparks it
	parked bool          // in pumps.parked (pumps.mu)
	busy   bool          // serving a client (pumps.mu)
	turns  uint64        // clients served (pumps.mu)
	seen   uint64        // turns at the last stall check (pumps.mu)
}

func newPumps() *pumps {
	p := &pumps{
		size:       max(2, runtime.GOMAXPROCS(0)),
		stallAfter: pumpStallAfter,
		idleAfter:  pumpIdleAfter,
		workers:    map[*pumpWorker]struct{}{},
	}
	p.watch = time.AfterFunc(time.Hour, p.check)
	p.watch.Stop()
	return p
}

// enqueue hands c, which has just got its first queued event, to a worker.
func (p *pumps) enqueue(c *client) {
	p.mu.Lock()
	p.queue = append(p.queue, c)
	p.dispatch()
	p.mu.Unlock()
}

// enqueueAll hands cs, clients that have just got their first queued
// event, to the workers under one lock: a fan-out to a large room does not
// take turns on the lock with the workers once per member.
func (p *pumps) enqueueAll(cs []*client) {
	if len(cs) == 0 {
		return
	}
	p.mu.Lock()
	p.queue = append(p.queue, cs...)
	for range min(len(cs), p.size) {
		p.dispatch()
	}
	p.mu.Unlock()
}

// dispatch wakes or starts a worker for the queued work (p.mu held).
func (p *pumps) dispatch() {
	if n := len(p.parked); n > 0 {
		w := p.parked[n-1]
		p.parked[n-1] = nil
		p.parked = p.parked[:n-1]
		w.parked = false
		w.wake <- struct{}{}
	} else if len(p.workers) < p.size {
		p.start()
	}
	if !p.watching {
		p.watching = true
		p.watch.Reset(p.stallAfter)
	}
}

// start adds a worker (p.mu held).
func (p *pumps) start() {
	w := &pumpWorker{wake: make(chan struct{}, 1)}
	p.workers[w] = struct{}{}
	go p.work(w)
}

// work serves queued clients until there have been none for idleAfter.
func (p *pumps) work(w *pumpWorker) {
	idle := time.NewTimer(p.idleAfter)
	idle.Stop()
	var back *client // a client whose turn ended with events left
	for {
		p.mu.Lock()
		if back != nil {
			p.queue = append(p.queue, back)
			back = nil
		}
		c := p.next(w)
		p.mu.Unlock()
		if c != nil {
			if c.pump(pumpTurn) {
				back = c
			}
			continue
		}
		idle.Reset(p.idleAfter)
		select {
		case <-w.wake:
			idle.Stop()
		case <-idle.C:
			p.mu.Lock()
			if w.parked {
				p.unpark(w)
				delete(p.workers, w)
				p.mu.Unlock()
				return
			}
			p.mu.Unlock()
			<-w.wake // unparked as the timer fired: the signal is on its way
		}
	}
}

// next takes the oldest queued client for w, or parks w (p.mu held).
func (p *pumps) next(w *pumpWorker) *client {
	if p.head == len(p.queue) {
		p.queue, p.head = p.queue[:0], 0
		w.busy, w.parked = false, true
		p.parked = append(p.parked, w)
		return nil
	}
	c := p.queue[p.head]
	p.queue[p.head] = nil
	p.head++
	w.busy = true
	w.turns++
	return c
}

// unpark removes w from the parked workers (p.mu held).
func (p *pumps) unpark(w *pumpWorker) {
	for i, pw := range p.parked {
		if pw == w {
			p.parked = append(p.parked[:i], p.parked[i+1:]...)
			break
		}
	}
	w.parked = false
}

// check runs every stallAfter while clients wait. A worker that served no
// new client since the last check is stuck in a send; the pool starts
// workers until size of them are free, so a slow peer delays nobody else
// for more than about two checks. The extra workers end when idle.
func (p *pumps) check() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.head == len(p.queue) {
		p.watching = false
		return
	}
	free := 0
	for w := range p.workers {
		if !w.busy || w.turns != w.seen {
			free++
		}
		w.seen = w.turns
	}
	for ; free < p.size; free++ {
		p.start()
	}
	p.watch.Reset(p.stallAfter)
}
