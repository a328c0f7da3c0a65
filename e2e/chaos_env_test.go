package e2e

// The chaos test's servers. The writer runs as a child process on a fixed
// data dir and address, so that it can be killed and started again: the
// child is this test binary itself, running TestChaosServerProcess (no
// build step), which serves the app as `pbchat serve` does, with the rate
// limits off (every client comes from 127.0.0.1) and NATS when asked. The
// realtime nodes run in this process (chatmodule.RunRealtimeNode, as
// cluster_test.go does) and NATS too, each stopped and started again on
// its address.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/pocketbase/pocketbase"
	"github.com/pocketbase/pocketbase/core"
	"golang.org/x/crypto/bcrypt"

	"github.com/pbchat/pbchat/chatmodule"
	"github.com/pbchat/pbchat/realtime"
)

const (
	chaosEnvDir        = "PBCHAT_CHAOS_SERVER_DIR"
	chaosEnvAddr       = "PBCHAT_CHAOS_SERVER_ADDR"
	chaosEnvNATS       = "PBCHAT_CHAOS_SERVER_NATS"
	chaosSuperEmail    = "chaos-admin@example.com"
	chaosSuperPassword = "chaos-admin-password"
	chaosNATSPrefix    = "chaos"
)

// TestChaosServerProcess is the chaos test's writer, run as a child process
// by TestChaos; on its own it skips.
func TestChaosServerProcess(t *testing.T) {
	dir := os.Getenv(chaosEnvDir)
	if dir == "" {
		t.Skip("the chaos test's writer process: TestChaos starts it")
	}
	os.Args = []string{os.Args[0], "serve", "--http", os.Getenv(chaosEnvAddr), "--dir", dir}
	app := pocketbase.NewWithConfig(pocketbase.Config{HideStartBanner: true})
	chatmodule.MustRegister(app, chatmodule.Config{
		RateLimits: chatmodule.RateLimits{Disabled: true},
		NATS:       chatmodule.NATSConfig{URL: os.Getenv(chaosEnvNATS), SubjectPrefix: chaosNATSPrefix},
	})
	app.OnServe().BindFunc(func(e *core.ServeEvent) error {
		if err := chaosEnsureSuperuser(e.App); err != nil {
			return err
		}
		if err := chaosCheapPasswords(e.App); err != nil {
			return err
		}
		return e.Next()
	})
	if err := app.Start(); err != nil {
		t.Fatal(err)
	}
}

func chaosEnsureSuperuser(app core.App) error {
	if _, err := app.FindAuthRecordByEmail(core.CollectionNameSuperusers, chaosSuperEmail); err == nil {
		return nil
	}
	c, err := app.FindCollectionByNameOrId(core.CollectionNameSuperusers)
	if err != nil {
		return err
	}
	record := core.NewRecord(c)
	record.SetEmail(chaosSuperEmail)
	record.SetPassword(chaosSuperPassword)
	return app.Save(record)
}

// chaosCheapPasswords lowers the users' bcrypt cost: signing 60 users up
// and in is then no longer most of the test's setup.
func chaosCheapPasswords(app core.App) error {
	users, err := app.FindCollectionByNameOrId("users")
	if err != nil {
		return err
	}
	if password, ok := users.Fields.GetByName("password").(*core.PasswordField); ok && password.Cost != bcrypt.MinCost {
		password.Cost = bcrypt.MinCost
		return app.Save(users)
	}
	return nil
}

// chaosWriterProc is the writer child process.
type chaosWriterProc struct {
	dir, addr, url, natsURL, logPath string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

func (p *chaosWriterProc) start() error {
	logs, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer logs.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestChaosServerProcess$", "-test.timeout=0")
	cmd.Env = append(os.Environ(), chaosEnvDir+"="+p.dir, chaosEnvAddr+"="+p.addr, chaosEnvNATS+"="+p.natsURL)
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // dies with the test
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	p.mu.Lock()
	p.cmd, p.exited = cmd, exited
	p.mu.Unlock()

	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if res, err := client.Get(p.url + "/api/health"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return fmt.Errorf("the writer exited before it was healthy; log:\n%s", p.logTail())
		case <-time.After(50 * time.Millisecond): // polling for readiness
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the writer was not healthy within 60 s; log:\n%s", p.logTail())
		}
	}
}

// signal sends sig and waits for the process to end (SIGKILL after 10 s).
func (p *chaosWriterProc) signal(sig syscall.Signal) {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
}

func (p *chaosWriterProc) logTail() string {
	raw, _ := os.ReadFile(p.logPath)
	if len(raw) > 4000 {
		raw = raw[len(raw)-4000:]
	}
	return string(raw)
}

// chaosNode is a realtime node in this process.
type chaosNode struct {
	addr, url, writer, natsURL string
	logPath                    string // "": logs discarded
	cancel                     context.CancelFunc
	done                       chan error
}

func (n *chaosNode) start() error {
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel, n.done = cancel, make(chan error, 1)
	var out io.Writer = io.Discard
	if n.logPath != "" {
		f, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		out = f // left open: the test's process ends soon after
	}
	logger := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	go func() {
		n.done <- chatmodule.RunRealtimeNode(ctx, realtime.NodeConfig{Writer: n.writer, Logger: logger},
			chatmodule.NATSConfig{URL: n.natsURL, SubjectPrefix: chaosNATSPrefix}, n.addr)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		// Any answer will do: the health says 503 while NATS is away.
		if res, err := http.Get(n.url + "/api/health"); err == nil {
			res.Body.Close()
			return nil
		}
		select {
		case err := <-n.done:
			return fmt.Errorf("node %s: %v", n.addr, err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node %s did not answer within 10 s", n.addr)
		}
	}
}

func (n *chaosNode) stop() {
	if n.cancel == nil {
		return
	}
	n.cancel()
	<-n.done
	n.cancel = nil
}

// chaosWorld is a topology: the writer, and in a cluster NATS and two nodes.
type chaosWorld struct {
	cluster  bool
	began    time.Time
	actions  []string // what the schedule did, when
	writer   *chaosWriterProc
	nodes    []*chaosNode
	natsPort int

	natsMu sync.Mutex
	nats   *natsserver.Server
}

func newChaosWorld(t *testing.T, cluster bool) *chaosWorld {
	t.Helper()
	tmp := t.TempDir()
	if keep := os.Getenv("PBCHAT_CHAOS_LOGS"); keep != "" {
		// Keep the writer's data dir (its logs are in auxiliary.db) and the
		// nodes' logs, for a look after the run.
		tmp = filepath.Join(keep, strings.ReplaceAll(t.Name(), "/", "-"))
		if err := os.RemoveAll(tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(tmp, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Logf("writer data dir and node logs in %s", tmp)
	}
	w := &chaosWorld{cluster: cluster, began: time.Now()}
	writerAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	w.writer = &chaosWriterProc{dir: filepath.Join(tmp, "pb_data"), addr: writerAddr, url: "http://" + writerAddr, logPath: filepath.Join(tmp, "writer.log")}
	if cluster {
		w.natsPort = freePort(t)
		if err := w.startNATS(); err != nil {
			t.Fatal(err)
		}
		w.writer.natsURL = fmt.Sprintf("nats://127.0.0.1:%d", w.natsPort)
	}
	t.Cleanup(func() {
		for _, n := range w.nodes {
			n.stop()
		}
		w.writer.signal(syscall.SIGKILL)
		w.stopNATS()
	})
	if err := w.writer.start(); err != nil {
		t.Fatal(err)
	}
	if cluster {
		for i := 0; i < 2; i++ {
			addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
			n := &chaosNode{addr: addr, url: "http://" + addr, writer: w.writer.url, natsURL: w.writer.natsURL}
			if os.Getenv("PBCHAT_CHAOS_LOGS") != "" {
				n.logPath = filepath.Join(tmp, fmt.Sprintf("node%d.log", i))
			}
			if err := n.start(); err != nil {
				t.Fatal(err)
			}
			w.nodes = append(w.nodes, n)
		}
	}
	return w
}

// endpoints are where clients hold their realtime connections.
func (w *chaosWorld) endpoints() []string {
	out := []string{w.writer.url}
	for _, n := range w.nodes {
		out = append(out, n.url)
	}
	return out
}

func (w *chaosWorld) startNATS() error {
	server, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: w.natsPort, NoLog: true, NoSigs: true})
	if err != nil {
		return fmt.Errorf("nats server: %w", err)
	}
	go server.Start()
	if !server.ReadyForConnections(10 * time.Second) {
		return errors.New("nats server not ready within 10 s")
	}
	w.natsMu.Lock()
	w.nats = server
	w.natsMu.Unlock()
	return nil
}

func (w *chaosWorld) stopNATS() {
	w.natsMu.Lock()
	server := w.nats
	w.nats = nil
	w.natsMu.Unlock()
	if server != nil {
		server.Shutdown()
		server.WaitForShutdown()
	}
}

// chaosRestarts counts what the schedule did.
type chaosRestarts struct {
	writerKills, writerStops, nodeRestarts, natsOutages int
}

// chaosAction is one step of a cycle of the schedule, at an offset.
type chaosAction struct {
	at   time.Duration
	name string
	run  func(cycle int) error
}

// schedule is the topology's cycle: what goes wrong, when. One process:
// the writer is killed (SIGKILL) and, later, stopped (SIGTERM), each time
// started again at once. Cluster: a node restarts, NATS is away for 10 s,
// the writer is killed and started again.
func (w *chaosWorld) schedule(r *chaosRestarts) []chaosAction {
	restartWriter := func(sig syscall.Signal) func(int) error {
		return func(int) error {
			w.writer.signal(sig)
			if sig == syscall.SIGKILL {
				r.writerKills++
			} else {
				r.writerStops++
			}
			return w.writer.start()
		}
	}
	if !w.cluster {
		return []chaosAction{
			{5 * time.Second, "writer killed and started", restartWriter(syscall.SIGKILL)},
			{14 * time.Second, "writer stopped and started", restartWriter(syscall.SIGTERM)},
		}
	}
	return []chaosAction{
		{1500 * time.Millisecond, "node restarted", func(cycle int) error {
			n := w.nodes[cycle%len(w.nodes)]
			n.stop()
			time.Sleep(500 * time.Millisecond) // the node is away
			r.nodeRestarts++
			return n.start()
		}},
		{4 * time.Second, "NATS away", func(int) error {
			w.stopNATS()
			r.natsOutages++
			time.Sleep(10 * time.Second) // NATS is away for 10 s
			return w.startNATS()
		}},
		{16 * time.Second, "writer killed and started", restartWriter(syscall.SIGKILL)},
	}
}

// chaosCycle is how long one round of the schedule takes.
const chaosCycle = 20 * time.Second

// runSchedule runs cycles of the schedule until end; an action under way
// is finished (what it stopped is started again).
func (w *chaosWorld) runSchedule(end time.Time, r *chaosRestarts) error {
	start := time.Now()
	actions := w.schedule(r)
	for cycle := 0; start.Add(time.Duration(cycle) * chaosCycle).Before(end); cycle++ {
		base := start.Add(time.Duration(cycle) * chaosCycle)
		for _, a := range actions {
			at := base.Add(a.at)
			if at.After(end) {
				return nil
			}
			time.Sleep(time.Until(at))
			from := time.Since(w.began)
			if err := a.run(cycle); err != nil {
				return err
			}
			w.actions = append(w.actions, fmt.Sprintf("%s %s–%s", a.name, from.Round(time.Millisecond), time.Since(w.began).Round(time.Millisecond)))
		}
	}
	return nil
}
