package hooks

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pbchat/pbchat/internal/chat"
)

type step struct {
	seq   int64
	owned bool
	skip  bool
	epoch string // "a" unless set
}

func TestSequencerPublishesInLogOrder(t *testing.T) {
	cases := []struct {
		name  string
		steps []step
		want  []string // event ids published, in order, once all steps are in
		first []string // what is out right after the steps, before any wait
	}{
		{"in order", []step{{seq: 1, owned: true}, {seq: 2, owned: true}, {seq: 3, owned: true}}, []string{"a1", "a2", "a3"}, []string{"a1", "a2", "a3"}},
		{"later ones wait for earlier ones", []step{{seq: 3, owned: true}, {seq: 2, owned: true}, {seq: 1, owned: true}}, []string{"a1", "a2", "a3"}, []string{"a1", "a2", "a3"}},
		{"a change that publishes nothing lets the next go", []step{{seq: 2, owned: true}, {seq: 1, owned: true, skip: true}}, []string{"a2"}, []string{"a2"}},
		{"a cascade's event follows the change before its deletion", []step{{seq: 2, owned: false}, {seq: 1, owned: true}, {seq: 2, owned: true}}, []string{"a1", "a2", "a2·"}, []string{"a1", "a2", "a2·"}},
		{"a cascade's event whose predecessor is out goes at once", []step{{seq: 1, owned: true}, {seq: 1, owned: false}}, []string{"a1", "a1·"}, []string{"a1", "a1·"}},
		{"a gap is waited for, then passed", []step{{seq: 1, owned: true}, {seq: 3, owned: true}}, []string{"a1", "a3"}, []string{"a1"}},
		{"another process's epoch is not held", []step{{seq: 5, owned: true, epoch: "x"}, {seq: 2, owned: true}}, []string{"x5", "a2"}, []string{"x5"}},
		{"a new epoch of this process starts at its first seq", []step{{seq: 7, owned: true, epoch: "b"}, {seq: 8, owned: true, epoch: "b"}}, []string{"b7", "b8"}, []string{"b7", "b8"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var out []string
			got := func() []string { mu.Lock(); defer mu.Unlock(); return slices.Clone(out) }
			firstSeq := map[string]int64{"a": 1, "b": 7}
			s := newSequencer(func(e chat.Event) { mu.Lock(); out = append(out, e.RecordID); mu.Unlock() },
				func(epoch string) (int64, bool) { n, ok := firstSeq[epoch]; return n, ok })
			s.maxWait = 50 * time.Millisecond
			for _, st := range tc.steps {
				epoch := st.epoch
				if epoch == "" {
					epoch = "a"
				}
				c := cursor{epoch: epoch, seq: st.seq}
				id := fmt.Sprint(epoch, st.seq)
				if !st.owned {
					id += "·"
				}
				switch {
				case st.skip:
					s.skip(c)
				default:
					s.submit(c, st.owned, chat.Event{RecordID: id})
				}
			}
			if first := got(); !slices.Equal(first, tc.first) {
				t.Fatalf("right after the steps: %v, want %v", first, tc.first)
			}
			deadline := time.Now().Add(5 * time.Second)
			for !slices.Equal(got(), tc.want) && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			if final := got(); !slices.Equal(final, tc.want) {
				t.Fatalf("published %v, want %v", final, tc.want)
			}
		})
	}
}

func TestSequencerPublishesALateChangeAtOnce(t *testing.T) {
	var mu sync.Mutex
	var out []string
	got := func() []string { mu.Lock(); defer mu.Unlock(); return slices.Clone(out) }
	s := newSequencer(func(e chat.Event) { mu.Lock(); out = append(out, e.RecordID); mu.Unlock() },
		func(string) (int64, bool) { return 1, true })
	s.maxWait = 10 * time.Millisecond
	s.submit(cursor{"a", 2}, true, chat.Event{RecordID: "a2"})
	for deadline := time.Now().Add(5 * time.Second); len(got()) == 0 && time.Now().Before(deadline); {
		time.Sleep(2 * time.Millisecond)
	}
	s.submit(cursor{"a", 1}, true, chat.Event{RecordID: "a1"}) // its wait ran out: not held
	if final := got(); !slices.Equal(final, []string{"a2", "a1"}) {
		t.Fatalf("published %v, want [a2 a1]", final)
	}
}
