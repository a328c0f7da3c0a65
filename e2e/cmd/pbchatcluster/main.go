// Command pbchatcluster runs pbchat as a cluster on loopback, for test
// suites written in other languages (the JS SDK suite, e2e/js): an embedded
// NATS server, the writer (`pbchat serve` with PBCHAT_NATS_URL) and realtime
// nodes (`pbchat realtime --writer … --nats …`), each on a free port.
//
//	go build -o pbchat . && go run ./e2e/cmd/pbchatcluster -bin ./pbchat -dir pb_data
//
// Once every process answers /api/health it prints one JSON line on stdout,
//
//	{"writer":"http://127.0.0.1:…","nodes":["http://127.0.0.1:…",…],"nats":"nats://127.0.0.1:…"}
//
// and runs until SIGINT or SIGTERM, then stops the processes and NATS. The
// processes' output goes to stderr, each line prefixed with its name. On
// Linux the processes die with this one even when it is killed.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
)

// healthTimeout is how long a process gets to answer /api/health.
const healthTimeout = 60 * time.Second

func main() {
	bin := flag.String("bin", "", "the pbchat binary (go build -o pbchat . at the repo root)")
	dir := flag.String("dir", "", "the writer's data dir (--dir of pbchat serve)")
	nodes := flag.Int("nodes", 2, "how many realtime nodes to run")
	publicDir := flag.String("publicDir", "", "passed to the writer's serve when set")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("pbchatcluster: ")
	if *bin == "" || *dir == "" {
		log.Fatal("-bin and -dir are required")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *bin, *dir, *publicDir, *nodes, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// cluster is what run prints once everything is up.
type cluster struct {
	Writer string   `json:"writer"`
	Nodes  []string `json:"nodes"`
	NATS   string   `json:"nats"`
}

func run(ctx context.Context, bin, dir, publicDir string, nodeCount int, out io.Writer) error {
	bin, err := filepath.Abs(bin)
	if err != nil {
		return fmt.Errorf("-bin: %w", err)
	}

	nats, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: natsserver.RANDOM_PORT, NoLog: true, NoSigs: true})
	if err != nil {
		return fmt.Errorf("nats server: %w", err)
	}
	go nats.Start()
	defer nats.Shutdown()
	if !nats.ReadyForConnections(10 * time.Second) {
		return errors.New("nats server: not ready within 10 s")
	}
	info := cluster{NATS: nats.ClientURL()}

	var procs []*process
	defer func() {
		for i := len(procs) - 1; i >= 0; i-- {
			procs[i].stop()
		}
	}()

	writerAddr, err := freeAddr()
	if err != nil {
		return err
	}
	args := []string{"serve", "--http", writerAddr, "--dir", dir}
	if publicDir != "" {
		args = append(args, "--publicDir", publicDir)
	}
	writer, err := start("writer", bin, args, "PBCHAT_NATS_URL="+info.NATS)
	if err != nil {
		return err
	}
	procs = append(procs, writer)
	info.Writer = "http://" + writerAddr
	if err := writer.waitHealthy(ctx, info.Writer); err != nil {
		return err
	}

	for i := 1; i <= nodeCount; i++ {
		addr, err := freeAddr()
		if err != nil {
			return err
		}
		node, err := start(fmt.Sprintf("node%d", i), bin,
			[]string{"realtime", "--writer", info.Writer, "--nats", info.NATS, "--http", addr})
		if err != nil {
			return err
		}
		procs = append(procs, node)
		url := "http://" + addr
		if err := node.waitHealthy(ctx, url); err != nil {
			return err
		}
		info.Nodes = append(info.Nodes, url)
	}

	line, err := json.Marshal(info)
	if err != nil {
		return fmt.Errorf("encode the cluster's addresses: %w", err)
	}
	if _, err := fmt.Fprintf(out, "%s\n", line); err != nil {
		return fmt.Errorf("print the cluster's addresses: %w", err)
	}

	for _, p := range procs {
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited: %v", p.name, p.err)
		default:
		}
	}
	// Until told to stop, or until a process dies (the cluster is broken then).
	exits := make(chan *process, len(procs))
	for _, p := range procs {
		go func() { <-p.exited; exits <- p }()
	}
	select {
	case <-ctx.Done():
		return nil
	case p := <-exits:
		return fmt.Errorf("%s exited: %v", p.name, p.err)
	}
}

// freeAddr returns a loopback address with a port nothing listens on now.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// process is one child: the writer or a realtime node.
type process struct {
	name   string
	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has exited
	err    error         // why, once exited is closed
	once   sync.Once
}

func start(name, bin string, args []string, env ...string) (*process, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = prefixed(name)
	cmd.Stderr = cmd.Stdout
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

func (p *process) waitHealthy(ctx context.Context, url string) error {
	deadline := time.Now().Add(healthTimeout)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		res, err := client.Get(url + "/api/health")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited before answering /api/health: %v", p.name, p.err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer %s/api/health within %s", p.name, url, healthTimeout)
		}
	}
}

// stop asks the process to end (SIGTERM) and kills it after 10 s.
func (p *process) stop() {
	p.once.Do(func() {
		select {
		case <-p.exited:
			return
		default:
		}
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			log.Printf("stop %s: %v", p.name, err)
		}
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			log.Printf("%s did not stop within 10 s: killing it", p.name)
			if err := p.cmd.Process.Kill(); err != nil {
				log.Printf("kill %s: %v", p.name, err)
			}
			<-p.exited
		}
	})
}

// prefixed returns a writer that copies lines to stderr as "name: line".
func prefixed(name string) io.Writer {
	r, w := io.Pipe()
	go func() {
		scanner := bufio.NewScanner(r)
		scanner.Buffer(make([]byte, 64*1024), 1024*1024)
		for scanner.Scan() {
			fmt.Fprintf(os.Stderr, "%s: %s\n", name, scanner.Text())
		}
		// A line too long for the scanner: drain the rest so the child never blocks.
		_, _ = io.Copy(io.Discard, r)
	}()
	return w
}
