package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The realtime load generator runs in a second process (the bench binary
// started with -sse-client): its CPU and memory stay out of the server's
// figures, and its sockets out of the server's file descriptor limit. It
// speaks PocketBase's protocol as the SDKs do: GET /api/realtime, read
// PB_CONNECT's clientId, POST the subscriptions with the user's token.
//
// Protocol on its stdin: one JSON SSEClientConfig line, then nothing until
// the parent closes stdin (the child then exits). On its stdout:
//
//	READY <connected> <failed> <millis>
//	E <client index> <seq> <unix nanos>   per received event whose record text is "bench:<seq>"
//	D <client index>                      a connection that ended

// SSEClientConfig is what the parent sends the client process.
type SSEClientConfig struct {
	URL      string      `json:"url"`
	Parallel int         `json:"parallel"`
	Clients  []SSEClient `json:"clients"`
	// LocalIP, when set, is the source address of every connection
	// (127.0.0.x): each address has its own ephemeral ports, so several
	// client processes can hold more connections to one server address
	// than one source address has ports.
	LocalIP string `json:"localIP,omitempty"`
	// Offset is added to the client indexes this process reports, so that
	// several processes' indexes do not overlap.
	Offset int `json:"offset,omitempty"`
}

// SSEClient is one connection: a user's token and its subscriptions.
type SSEClient struct {
	Token string   `json:"t"`
	Subs  []string `json:"s"`
}

var benchMarker = []byte(`"text":"bench:`)

// RunSSEClients is the -sse-client process.
func RunSSEClients(stdin io.Reader, stdout io.Writer) error {
	in := bufio.NewReader(stdin)
	line, err := in.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	var cfg SSEClientConfig
	if err := json.Unmarshal(line, &cfg); err != nil {
		return fmt.Errorf("decode config: %w", err)
	}

	lines := make(chan string, 1<<16)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		w := bufio.NewWriterSize(stdout, 1<<16)
		for l := range lines {
			w.WriteString(l)
			if len(lines) == 0 {
				w.Flush()
			}
		}
		w.Flush()
	}()

	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	if cfg.LocalIP != "" {
		ip := net.ParseIP(cfg.LocalIP)
		if ip == nil {
			return fmt.Errorf("local IP %q", cfg.LocalIP)
		}
		// The posts come from the same address: PocketBase refuses a
		// subscription from another IP than its connection's.
		dialer.LocalAddr = &net.TCPAddr{IP: ip}
	}
	streams := &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext, DisableCompression: true, MaxIdleConnsPerHost: 1}}
	posts := &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext, DisableCompression: true, MaxIdleConns: 256, MaxIdleConnsPerHost: 256}, Timeout: 2 * time.Minute}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	sem := make(chan struct{}, max(cfg.Parallel, 1))
	var wg sync.WaitGroup
	start := time.Now()
	for k, c := range cfg.Clients {
		i := k + cfg.Offset
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			released := false
			release := func() {
				if !released {
					released = true
					<-sem
					wg.Done()
				}
			}
			defer release()
			err := runStream(ctx, streams, posts, cfg.URL, i, c, lines, func() { ok.Add(1); release() })
			if !released {
				failed.Add(1)
				if err != nil {
					firstErr.CompareAndSwap(nil, fmt.Sprintf("client %d: %v", i, err))
				}
			} else if ctx.Err() == nil {
				lines <- "D " + strconv.Itoa(i) + "\n"
			}
		}()
	}
	wg.Wait()
	if e, _ := firstErr.Load().(string); e != "" {
		fmt.Fprintln(os.Stderr, "sse-client:", e)
	}
	lines <- fmt.Sprintf("READY %d %d %d\n", ok.Load(), failed.Load(), time.Since(start).Milliseconds())

	// Hold the connections until the parent closes stdin.
	_, _ = io.Copy(io.Discard, in)
	cancel()
	return nil
}

func runStream(ctx context.Context, streams, posts *http.Client, url string, index int, c SSEClient, lines chan<- string, subscribed func()) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/api/realtime", nil)
	if err != nil {
		return err
	}
	res, err := streams.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("connect: %d", res.StatusCode)
	}
	br := bufio.NewReaderSize(res.Body, 16<<10)
	var event []byte
	var data []byte
	connected := false
	prefix := "E " + strconv.Itoa(index) + " "
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		line = bytes.TrimRight(line, "\r\n")
		switch {
		case bytes.HasPrefix(line, []byte("event:")):
			event = append(event[:0], bytes.TrimSpace(line[6:])...)
		case bytes.HasPrefix(line, []byte("data:")):
			data = append(data[:0], bytes.TrimSpace(line[5:])...)
		case len(line) == 0:
			if len(event) == 0 {
				continue
			}
			if !connected {
				if string(event) != "PB_CONNECT" {
					return fmt.Errorf("first event %q", event)
				}
				var hello struct {
					ClientID string `json:"clientId"`
				}
				if err := json.Unmarshal(data, &hello); err != nil {
					return err
				}
				if err := subscribeSSE(ctx, posts, url, hello.ClientID, c); err != nil {
					return err
				}
				connected = true
				subscribed()
			} else if i := bytes.Index(data, benchMarker); i >= 0 {
				now := time.Now().UnixNano()
				rest := data[i+len(benchMarker):]
				if j := bytes.IndexByte(rest, '"'); j > 0 {
					lines <- prefix + string(rest[:j]) + " " + strconv.FormatInt(now, 10) + "\n"
				}
			}
			event, data = event[:0], data[:0]
		}
	}
}

func subscribeSSE(ctx context.Context, posts *http.Client, url, clientID string, c SSEClient) error {
	body, _ := json.Marshal(map[string]any{"clientId": clientID, "subscriptions": c.Subs})
	status, out, err := Call(ctx, posts, http.MethodPost, url+"/api/realtime", c.Token, body)
	if err != nil {
		return err
	}
	if status != http.StatusNoContent {
		return fmt.Errorf("subscribe: %d %s", status, truncate(out, 200))
	}
	return nil
}
