package chatmodule

import (
	"testing"
	"time"

	"github.com/pocketbase/pocketbase/core"
)

// The window is fixed, as PocketBase's: MaxRequests per Duration, then a
// fresh budget; finished windows are forgotten.
func TestUserLimiterWindow(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	l := newUserLimiter()
	l.now = func() time.Time { return now }
	rule := core.RateLimitRule{Label: RateLimitLabelMessages, MaxRequests: 2, Duration: 10}

	for i := 0; i < 2; i++ {
		if ok, _ := l.consume("a", rule); !ok {
			t.Fatalf("request %d refused within the limit", i+1)
		}
	}
	now = now.Add(4 * time.Second)
	ok, retry := l.consume("a", rule)
	if ok || retry != 6*time.Second {
		t.Fatalf("3rd request: allowed=%v retry=%s, want refused with 6s left", ok, retry)
	}
	if ok, _ := l.consume("b", rule); !ok {
		t.Fatalf("another key shares a's budget")
	}
	now = now.Add(6 * time.Second)
	if ok, _ := l.consume("a", rule); !ok {
		t.Fatalf("refused after the window ended")
	}

	// A lowered limit applies to a running window.
	if ok, _ := l.consume("a", core.RateLimitRule{Label: rule.Label, MaxRequests: 1, Duration: 10}); ok {
		t.Fatalf("lowered limit not applied")
	}

	now = now.Add(2 * time.Minute)
	l.consume("c", rule)
	if n := l.size(); n != 1 {
		t.Fatalf("limiter holds %d windows after a sweep, want 1", n)
	}
}

func TestIPInList(t *testing.T) {
	for _, c := range []struct {
		list []string
		ip   string
		want bool
	}{
		{[]string{"127.0.0.0/8"}, "127.0.0.1", true},
		{[]string{"10.0.0.1"}, "10.0.0.1", true},
		{[]string{"10.0.0.1"}, "10.0.0.2", false},
		{nil, "10.0.0.1", false},
		{[]string{"::1"}, "::1", true},
		{[]string{"garbage"}, "10.0.0.1", false},
		{[]string{"10.0.0.0/8"}, "", false},
	} {
		if got := ipInList(c.list, c.ip); got != c.want {
			t.Errorf("ipInList(%v, %q) = %v", c.list, c.ip, got)
		}
	}
}
