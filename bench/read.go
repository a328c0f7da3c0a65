package bench

import (
	"fmt"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/pocketbase/pocketbase/core"
)

// ReadConfig is the read scenario on one dataset.
type ReadConfig struct {
	Pbchat, Stock *App
	Dataset       *Dataset
	History       int // requests per app
	Overview      int // requests per route and app
	Naive         int // N+1 overviews/unread totals through the records API
	Log           func(string)
}

// ReadResult is one row: latency of one kind of read on one side.
type ReadResult struct {
	What     string // "history", "overview", "unread"
	Side     string // pbchat, or which baseline
	Requests int    // HTTP requests per operation
	N        int
	P50, P99 time.Duration
	Note     string
}

// Baselines for the overview and unread totals on plain PocketBase.
const (
	SideView  = "hand-written view collection"
	SideNaive = "records API, N+1 (6 at a time)"
)

const historyExpand = "chat_message_media_via_message.media,chat_message_reactions_via_message"

// HistoryURL is the latest page of a room with attachments and reactions expanded.
func HistoryURL(base, room string) string {
	q := url.Values{}
	q.Set("filter", fmt.Sprintf("room = '%s'", room))
	q.Set("sort", "-created,-id")
	q.Set("perPage", "50")
	q.Set("skipTotal", "1")
	q.Set("expand", historyExpand)
	return base + "/api/collections/chat_messages/records?" + q.Encode()
}

// unreadView and overviewView are what a developer would write by hand on
// plain PocketBase: view collections with pbchat's queries, listed with the
// rule user = @request.auth.id.
const unreadView = `SELECT m.id AS id, m.user AS user, m.room AS room, m.muted AS muted,
	(SELECT count(*) FROM chat_messages x WHERE x.room = m.room
	   AND x.created >= (CASE WHEN m.last_seen_at != '' THEN m.last_seen_at ELSE m.created END)
	   AND (m.last_seen_at = '' OR x.created != m.last_seen_at)
	   AND x.user != m.user) AS unread
FROM chat_room_users m`

const overviewView = `SELECT m.id AS id, m.user AS user, m.room AS room, m.muted AS muted, m.last_seen_at AS last_seen_at,
	(SELECT count(*) FROM chat_messages x WHERE x.room = m.room
	   AND x.created >= (CASE WHEN m.last_seen_at != '' THEN m.last_seen_at ELSE m.created END)
	   AND (m.last_seen_at = '' OR x.created != m.last_seen_at)
	   AND x.user != m.user) AS unread,
	lm.id AS lm_id, lm.user AS lm_user, lm.text AS lm_text, lm.created AS lm_created,
	max(coalesce(lm.created, ''), m.created) AS activity
FROM chat_room_users m
LEFT JOIN chat_messages lm ON lm.id = (
	SELECT y.id FROM chat_messages y WHERE y.room = m.room ORDER BY y.created DESC, y.id DESC LIMIT 1)`

// AddBaselineViews creates the hand-written view collections on the stock app.
func AddBaselineViews(a *App) error {
	for name, query := range map[string]string{"bench_unread": unreadView, "bench_overview": overviewView} {
		if _, err := a.App.FindCollectionByNameOrId(name); err == nil {
			continue
		}
		c := core.NewViewCollection(name)
		c.ViewQuery = query
		rule := `@request.auth.id != "" && user = @request.auth.id`
		c.ListRule, c.ViewRule = &rule, &rule
		if err := a.App.Save(c); err != nil {
			return fmt.Errorf("view %s: %w", name, err)
		}
	}
	return nil
}

type listPage struct {
	TotalItems int              `json:"totalItems"`
	Items      []map[string]any `json:"items"`
}

// RunRead measures the history page, the rooms overview and unread totals.
func RunRead(cfg ReadConfig) ([]ReadResult, error) {
	ds := cfg.Dataset
	client := HTTPClient(8)
	readers := []string{}
	for _, h := range ds.History {
		readers = append(readers, h.Reader)
	}
	all := append(slices.Clone(readers), ds.FocusUsers...)
	pbTokens, err := cfg.Pbchat.Tokens(all)
	if err != nil {
		return nil, err
	}
	stockTokens, err := cfg.Stock.Tokens(all)
	if err != nil {
		return nil, err
	}
	if err := AddBaselineViews(cfg.Stock); err != nil {
		return nil, err
	}

	// Sanity: a page has min(50, room size) messages and expands both relations.
	var page listPage
	h := ds.History[0]
	if err := GetJSON(client, HistoryURL(cfg.Pbchat.URL, h.Room), pbTokens[h.Reader], &page); err != nil {
		return nil, err
	}
	if len(page.Items) != min(50, h.Messages) {
		return nil, fmt.Errorf("history page of %s: %d items, want %d", h.Room, len(page.Items), min(50, h.Messages))
	}
	expanded := 0
	for _, item := range page.Items {
		if item["expand"] != nil {
			expanded++
		}
	}
	if expanded == 0 {
		return nil, fmt.Errorf("history page of %s: nothing expanded", h.Room)
	}

	var results []ReadResult
	timed := func(what, side string, requests, n int, note string, op func(i int) error) error {
		lats := make([]time.Duration, 0, n)
		for i := 0; i < n; i++ {
			t0 := time.Now()
			if err := op(i); err != nil {
				return fmt.Errorf("%s (%s): %w", what, side, err)
			}
			lats = append(lats, time.Since(t0))
		}
		r := ReadResult{What: what, Side: side, Requests: requests, N: n, P50: Percentile(lats, 50), P99: Percentile(lats, 99), Note: note}
		results = append(results, r)
		if cfg.Log != nil {
			cfg.Log(fmt.Sprintf("  %-8s %-32s p50 %8.2f ms  p99 %8.2f ms  (%d requests each, n=%d)", what, side, ms(r.P50), ms(r.P99), requests, n))
		}
		return nil
	}
	// Interleave the two apps request by request: noise hits both alike.
	interleaved := func(what string, requests, n int, note string, pb, stock func(i int) error, stockSide string) error {
		// Warm up both sides (page caches, prepared collections) untimed.
		for i := 0; i < max(n/5, 10); i++ {
			if err := pb(i); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			if err := stock(i); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
		}
		var pbLats, stLats []time.Duration
		for i := 0; i < n; i++ {
			for side, op := range []func(int) error{pb, stock} {
				t0 := time.Now()
				if err := op(i); err != nil {
					return fmt.Errorf("%s: %w", what, err)
				}
				if side == 0 {
					pbLats = append(pbLats, time.Since(t0))
				} else {
					stLats = append(stLats, time.Since(t0))
				}
			}
		}
		for _, x := range []struct {
			side string
			lats []time.Duration
		}{{"pbchat", pbLats}, {stockSide, stLats}} {
			r := ReadResult{What: what, Side: x.side, Requests: requests, N: n, P50: Percentile(x.lats, 50), P99: Percentile(x.lats, 99), Note: note}
			results = append(results, r)
			if cfg.Log != nil {
				cfg.Log(fmt.Sprintf("  %-8s %-32s p50 %8.2f ms  p99 %8.2f ms  (%d requests each, n=%d)", what, x.side, ms(r.P50), ms(r.P99), requests, n))
			}
		}
		return nil
	}

	history := func(a *App, tokens map[string]string) func(int) error {
		return func(i int) error {
			h := ds.History[i%len(ds.History)]
			return GetJSON(client, HistoryURL(a.URL, h.Room), tokens[h.Reader], nil)
		}
	}
	err = interleaved("history", 1, cfg.History, "", history(cfg.Pbchat, pbTokens), history(cfg.Stock, stockTokens), "stock PocketBase (same rules)")
	if err != nil {
		return nil, err
	}

	// Unread totals: check pbchat's answer against what the generator counted.
	for f, u := range ds.FocusUsers {
		var unread struct {
			Total int `json:"total"`
		}
		if err := GetJSON(client, cfg.Pbchat.URL+"/api/chat/unread", pbTokens[u], &unread); err != nil {
			return nil, err
		}
		if unread.Total != ds.FocusUnread[f] {
			return nil, fmt.Errorf("unread of %s: %d, generator counted %d", u, unread.Total, ds.FocusUnread[f])
		}
	}
	focus := func(i int) string { return ds.FocusUsers[i%len(ds.FocusUsers)] }
	err = interleaved("overview", 1, cfg.Overview, "page 1 (30 rooms), sorted by activity",
		func(i int) error { return GetJSON(client, cfg.Pbchat.URL+"/api/chat/rooms", pbTokens[focus(i)], nil) },
		func(i int) error {
			return GetJSON(client, cfg.Stock.URL+"/api/collections/bench_overview/records?perPage=30&sort=-activity,room&expand=room", stockTokens[focus(i)], nil)
		}, SideView)
	if err != nil {
		return nil, err
	}
	err = interleaved("unread", 1, cfg.Overview, "",
		func(i int) error { return GetJSON(client, cfg.Pbchat.URL+"/api/chat/unread", pbTokens[focus(i)], nil) },
		func(i int) error {
			var p listPage
			if err := GetJSON(client, cfg.Stock.URL+"/api/collections/bench_unread/records?perPage=500&skipTotal=1&fields=room,muted,unread", stockTokens[focus(i)], &p); err != nil {
				return err
			}
			if len(p.Items) != FocusRooms {
				return fmt.Errorf("view: %d rooms, want %d", len(p.Items), FocusRooms)
			}
			return nil
		}, SideView)
	if err != nil {
		return nil, err
	}

	// The records API alone: memberships, then per room a count (and the last message).
	naive := func(i int, withLast bool) error {
		u := focus(i)
		token := stockTokens[u]
		var ms listPage
		q := url.Values{}
		q.Set("filter", fmt.Sprintf("user = '%s'", u))
		q.Set("perPage", "500")
		q.Set("skipTotal", "1")
		if withLast {
			q.Set("expand", "room")
		}
		if err := GetJSON(client, cfg.Stock.URL+"/api/collections/chat_room_users/records?"+q.Encode(), token, &ms); err != nil {
			return err
		}
		var wg sync.WaitGroup
		sem := make(chan struct{}, 6)
		var mu sync.Mutex
		var firstErr error
		total := 0
		for _, m := range ms.Items {
			room, _ := m["room"].(string)
			seen, _ := m["last_seen_at"].(string)
			if seen == "" {
				seen, _ = m["created"].(string)
			}
			urls := []string{}
			cq := url.Values{}
			cq.Set("filter", fmt.Sprintf("room = '%s' && created > '%s' && user != '%s'", room, seen, u))
			cq.Set("perPage", "1")
			cq.Set("fields", "id")
			urls = append(urls, cfg.Stock.URL+"/api/collections/chat_messages/records?"+cq.Encode())
			if withLast {
				lq := url.Values{}
				lq.Set("filter", fmt.Sprintf("room = '%s'", room))
				lq.Set("sort", "-created,-id")
				lq.Set("perPage", "1")
				lq.Set("skipTotal", "1")
				urls = append(urls, cfg.Stock.URL+"/api/collections/chat_messages/records?"+lq.Encode())
			}
			for k, link := range urls {
				wg.Add(1)
				sem <- struct{}{}
				go func() {
					defer wg.Done()
					defer func() { <-sem }()
					var p listPage
					err := GetJSON(client, link, token, &p)
					mu.Lock()
					defer mu.Unlock()
					if err != nil && firstErr == nil {
						firstErr = err
					}
					if k == 0 {
						total += p.TotalItems
					}
				}()
			}
		}
		wg.Wait()
		if firstErr != nil {
			return firstErr
		}
		if f := i % len(ds.FocusUsers); total != ds.FocusUnread[f] {
			return fmt.Errorf("N+1 unread of %s: %d, generator counted %d", u, total, ds.FocusUnread[f])
		}
		return nil
	}
	if cfg.Naive > 0 {
		if err := timed("overview", SideNaive, 1+2*FocusRooms, cfg.Naive, "", func(i int) error { return naive(i, true) }); err != nil {
			return nil, err
		}
		if err := timed("unread", SideNaive, 1+FocusRooms, cfg.Naive, "", func(i int) error { return naive(i, false) }); err != nil {
			return nil, err
		}
	}
	return results, nil
}
