package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
)

// BenchmarkCluster: 10k SSE clients, a 1,000-member room whose members are
// all connected, one message. Single node (the writer holds every
// connection) against two realtime nodes over NATS (each holds half, the
// writer holds none). Every process is a real `pbchat` child process on
// loopback, so each one's CPU is its own; the clients run in this process.
// Reported: delivery p50/p99 until each member has the message, and CPU
// milliseconds per delivered event of each process.
func BenchmarkCluster(b *testing.B) {
	for _, layout := range []string{"single-node", "two-nodes"} {
		b.Run(layout, func(b *testing.B) { benchmarkCluster(b, layout) })
	}
}

const (
	clusterClients = 10000
	clusterMembers = 1000
)

type clusterProc struct {
	name string
	cmd  *exec.Cmd
	url  string
}

func benchmarkCluster(b *testing.B, layout string) {
	bin := buildPbchat(b)
	dir := b.TempDir()
	room, tokens := prepareClusterData(b, dir)

	var natsURL string
	if layout == "two-nodes" {
		port := freeTCPPort(b)
		ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: port, NoLog: true, NoSigs: true, MaxPayload: 1 << 20})
		if err != nil {
			b.Fatal(err)
		}
		go ns.Start()
		if !ns.ReadyForConnections(5 * time.Second) {
			b.Fatal("nats not ready")
		}
		b.Cleanup(ns.Shutdown)
		natsURL = fmt.Sprintf("nats://127.0.0.1:%d", port)
	}

	writer := startProc(b, bin, "writer", []string{"PBCHAT_NATS_URL=" + natsURL}, "serve", "--dir", dir)
	edges := []*clusterProc{writer}
	if layout == "two-nodes" {
		edges = nil
		for i := 1; i <= 2; i++ {
			edges = append(edges, startProc(b, bin, fmt.Sprintf("node%d", i), nil,
				"realtime", "--writer", writer.url, "--nats", natsURL))
		}
	}

	// Connect every client; member i reads on edge i%len(edges).
	arrivals := make(chan clusterArrival, clusterMembers*2)
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	streams := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clusterClients, MaxConnsPerHost: 0}}
	posts := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 30 * time.Second}
	var wg sync.WaitGroup
	errs := make(chan error, clusterClients)
	sem := make(chan struct{}, 64)
	for i := 0; i < clusterClients; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			edge := edges[i%len(edges)]
			sub := "chat_messages/*"
			if i < clusterMembers {
				sub = "chat/rooms/" + room
			}
			if err := connectCluster(ctx, streams, posts, edge, tokens[i], sub, i < clusterMembers, i%len(edges), arrivals); err != nil {
				errs <- fmt.Errorf("client %d: %w", i, err)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}

	var latencies []time.Duration
	deliveredOn := make([]int, len(edges))
	cpuBefore := procsCPU(b, append([]*clusterProc{writer}, edges...))
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		marker := fmt.Sprintf("bench-%s-%d", layout, n)
		body, _ := json.Marshal(map[string]any{"room": room, "text": marker})
		start := time.Now()
		req, _ := http.NewRequest(http.MethodPost, writer.url+"/api/collections/chat_messages/records", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", tokens[0])
		res, err := posts.Do(req)
		if err != nil || res.StatusCode != http.StatusOK {
			b.Fatalf("post: %v %v", err, res)
		}
		res.Body.Close()
		for got := 0; got < clusterMembers; {
			select {
			case a := <-arrivals:
				if a.marker != marker {
					continue
				}
				got++
				deliveredOn[a.edge]++
				latencies = append(latencies, a.at.Sub(start))
			case <-time.After(30 * time.Second):
				b.Fatalf("message %d reached %d of %d members", n, got, clusterMembers)
			}
		}
	}
	b.StopTimer()
	cpuAfter := procsCPU(b, append([]*clusterProc{writer}, edges...))

	slices.Sort(latencies)
	b.ReportMetric(ms(latencies[len(latencies)/2]), "p50-ms")
	b.ReportMetric(ms(latencies[len(latencies)*99/100]), "p99-ms")
	if layout == "single-node" {
		b.ReportMetric(ms(cpuAfter[0]-cpuBefore[0])/float64(deliveredOn[0]), "writer-cpu-ms/event")
	} else {
		b.ReportMetric(ms(cpuAfter[0]-cpuBefore[0])/float64(b.N), "writer-cpu-ms/msg")
		for i := range edges {
			b.ReportMetric(ms(cpuAfter[i+1]-cpuBefore[i+1])/float64(deliveredOn[i]), fmt.Sprintf("node%d-cpu-ms/event", i+1))
		}
	}
}

type clusterArrival struct {
	marker string
	edge   int
	at     time.Time
}

// connectCluster opens an SSE stream as the SDKs do and subscribes it.
func connectCluster(ctx context.Context, streams, posts *http.Client, edge *clusterProc, token, sub string, member bool, edgeIndex int, arrivals chan<- clusterArrival) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, edge.url+"/api/realtime", nil)
	res, err := streams.Do(req)
	if err != nil {
		return err
	}
	reader := bufio.NewReaderSize(res.Body, 4096)
	clientID := ""
	for clientID == "" {
		line, err := reader.ReadString('\n')
		if err != nil {
			return fmt.Errorf("PB_CONNECT: %w", err)
		}
		if rest, ok := strings.CutPrefix(line, `data:{"clientId":"`); ok {
			clientID, _, _ = strings.Cut(rest, `"`)
		}
	}
	body, _ := json.Marshal(map[string]any{"clientId": clientID, "subscriptions": []string{sub}})
	post, _ := http.NewRequest(http.MethodPost, edge.url+"/api/realtime", bytes.NewReader(body))
	post.Header.Set("Content-Type", "application/json")
	post.Header.Set("Authorization", token)
	answer, err := posts.Do(post)
	if err != nil {
		return err
	}
	answer.Body.Close()
	if answer.StatusCode != http.StatusNoContent {
		return fmt.Errorf("subscribe: %d", answer.StatusCode)
	}
	go func() {
		defer res.Body.Close()
		for {
			line, err := reader.ReadString('\n')
			if err != nil {
				return
			}
			if !member || !strings.HasPrefix(line, "data:") {
				continue
			}
			if _, rest, ok := strings.Cut(line, `"text":"`); ok {
				marker, _, _ := strings.Cut(rest, `"`)
				arrivals <- clusterArrival{marker: marker, edge: edgeIndex, at: time.Now()}
			}
		}
	}()
	return nil
}

// prepareClusterData writes 10k users and a 1,000-member room into dir.
func prepareClusterData(b *testing.B, dir string) (string, []string) {
	b.Helper()
	app, err := NewApp(dir, KindPbchat)
	if err != nil {
		b.Fatal(err)
	}
	defer app.Close()
	if err := InsertUsers(app.App, 0, clusterClients); err != nil {
		b.Fatal(err)
	}
	ids := make([]string, clusterClients)
	for i := range ids {
		ids[i] = UserID(i)
	}
	room := RoomID(1)
	if err := InsertRoom(app.App, room, ids[:clusterMembers], pbDate(time.Now())); err != nil {
		b.Fatal(err)
	}
	byID, err := app.Tokens(ids)
	if err != nil {
		b.Fatal(err)
	}
	tokens := make([]string, len(ids))
	for i, id := range ids {
		tokens[i] = byID[id]
	}
	return room, tokens
}

var buildOnce sync.Once
var builtBinary string

func buildPbchat(b *testing.B) string {
	buildOnce.Do(func() {
		out := filepath.Join(os.TempDir(), "pbchat-bench-bin", "pbchat")
		cmd := exec.Command("go", "build", "-o", out, "..")
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err == nil {
			builtBinary = out
		}
	})
	if builtBinary == "" {
		b.Fatal("go build failed")
	}
	return builtBinary
}

func startProc(b *testing.B, bin, name string, env []string, args ...string) *clusterProc {
	b.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", freeTCPPort(b))
	cmd := exec.Command(bin, append(args, "--http", addr)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	p := &clusterProc{name: name, cmd: cmd, url: "http://" + addr}
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get(p.url + "/api/health")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s did not become healthy", name)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freeTCPPort(b *testing.B) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// procsCPU reads each process's user+system CPU time from /proc.
func procsCPU(b *testing.B, procs []*clusterProc) []time.Duration {
	out := make([]time.Duration, len(procs))
	for i, p := range procs {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
		if err != nil {
			b.Fatal(err)
		}
		// Fields after the ")" that ends the command name: utime is the 12th, stime the 13th.
		fields := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+1:]))
		utime, _ := strconv.Atoi(fields[11])
		stime, _ := strconv.Atoi(fields[12])
		out[i] = time.Duration(utime+stime) * 10 * time.Millisecond // USER_HZ is 100 on Linux
	}
	return out
}
