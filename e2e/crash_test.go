package e2e

// Crash safety: the real binary (go build of main.go) serves a data dir; many
// users send messages, some with attachments; the server is killed with
// SIGKILL in the middle of the stream and started again on the same data
// dir. Every message that was answered 2xx must be there, with its text and
// author, and no message may exist without all of its attachments (nor an
// attachment without its file).

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pbchat/pbchat/chatmodule"
	"github.com/pbchat/pbchat/internal/chattest"
)

// startDemoPBChat builds the ready app, fills a fresh data dir with demo data
// and serves it as a child process (skipped with -short).
func startDemoPBChat(t *testing.T) (bin, dir string, server *pbProcess, c *pbClient) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary; skipped with -short")
	}
	tmp := t.TempDir()
	bin = buildPBChat(t, tmp)
	dir = filepath.Join(tmp, "pb_data")
	runPBChat(t, bin, "chat", "demo", "--dir", dir)
	server = startPBChat(t, bin, dir)
	return bin, dir, server, newPBClient(server.URL)
}

// buildPBChat builds the ready app (main.go) into dir.
func buildPBChat(t testing.TB, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "pbchat")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = ".." // the module root: tests run in e2e/
	cmd.Env = os.Environ()
	if os.Getenv("GOTOOLCHAIN") == "" {
		cmd.Env = append(cmd.Env, "GOTOOLCHAIN=go1.27.3")
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// pbProcess is the binary serving a data dir on a loopback port.
type pbProcess struct {
	t      testing.TB
	bin    string
	dir    string
	URL    string
	cmd    *exec.Cmd
	logs   *os.File
	exited chan struct{}
}

func freeLoopbackAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// runPBChat runs a one-shot command of the binary (chat demo, …).
func runPBChat(t testing.TB, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = filepath.Dir(bin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", bin, args, err, out)
	}
	return string(out)
}

// startPBChat serves dir and waits until /api/health answers.
func startPBChat(t testing.TB, bin, dir string) *pbProcess {
	t.Helper()
	addr := freeLoopbackAddr(t)
	logs, err := os.OpenFile(filepath.Join(filepath.Dir(dir), "server.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--http", addr, "--dir", dir)
	cmd.Dir = filepath.Dir(bin)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &pbProcess{t: t, bin: bin, dir: dir, URL: "http://" + addr, cmd: cmd, logs: logs, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() { p.stop(); logs.Close() })

	deadline := time.Now().Add(60 * time.Second)
	for {
		res, err := http.Get(p.URL + "/api/health")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case <-p.exited:
			t.Fatalf("pbchat serve exited before it was healthy; log:\n%s", p.log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("pbchat serve not healthy after 60s; log:\n%s", p.log())
		}
		time.Sleep(50 * time.Millisecond) // polling for readiness, not an assertion
	}
}

func (p *pbProcess) log() string {
	raw, _ := os.ReadFile(p.logs.Name())
	return string(raw)
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *pbProcess) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// stop ends the process gracefully (SIGTERM), or kills it after 10s.
func (p *pbProcess) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		p.kill()
	}
}

// pbClient speaks to a pbProcess without testing.T, so that it can be used
// from many goroutines.
type pbClient struct {
	base string
	http *http.Client
}

func newPBClient(base string) *pbClient {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 256
	return &pbClient{base: base, http: &http.Client{Transport: transport, Timeout: 30 * time.Second}}
}

type pbResponse struct {
	Status int
	Body   []byte
}

func (r *pbResponse) JSON() map[string]any {
	var out map[string]any
	_ = json.Unmarshal(r.Body, &out)
	return out
}

func (r *pbResponse) Str(key string) string { s, _ := r.JSON()[key].(string); return s }

func (c *pbClient) do(ctx context.Context, token, method, path string, body any) (*pbResponse, error) {
	var reader io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		reader = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, reader)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return c.send(req, token)
}

func (c *pbClient) upload(ctx context.Context, token, path, field, name string, content []byte) (*pbResponse, error) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	part, err := w.CreateFormFile(field, name)
	if err != nil {
		return nil, err
	}
	_, _ = part.Write(content)
	_ = w.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, &buf)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", w.FormDataContentType())
	return c.send(req, token)
}

func (c *pbClient) send(req *http.Request, token string) (*pbResponse, error) {
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	return &pbResponse{Status: res.StatusCode, Body: body}, nil
}

// must is do that fails the test unless the answer is want.
func (c *pbClient) must(t testing.TB, token, method, path string, body any, want int) *pbResponse {
	t.Helper()
	res, err := c.do(context.Background(), token, method, path, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if res.Status != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, res.Status, want, res.Body)
	}
	return res
}

func (c *pbClient) superuserToken(t testing.TB) string {
	t.Helper()
	return c.must(t, "", http.MethodPost, "/api/collections/_superusers/auth-with-password",
		map[string]any{"identity": chatmodule.DemoAdminEmail, "password": chatmodule.DemoAdminPassword}, http.StatusOK).Str("token")
}

// newUsers creates n users as the superuser and signs each in.
func (c *pbClient) newUsers(t testing.TB, super, prefix string, n int) (ids, tokens []string) {
	t.Helper()
	for i := 0; i < n; i++ {
		email := fmt.Sprintf("%s%03d@example.com", prefix, i)
		res := c.must(t, super, http.MethodPost, "/api/collections/users/records", map[string]any{
			"email": email, "password": "password-" + prefix, "passwordConfirm": "password-" + prefix, "verified": true, "name": prefix + strconv.Itoa(i),
		}, http.StatusOK)
		ids = append(ids, res.Str("id"))
		auth := c.must(t, "", http.MethodPost, "/api/collections/users/auth-with-password",
			map[string]any{"identity": email, "password": "password-" + prefix}, http.StatusOK)
		tokens = append(tokens, auth.Str("token"))
	}
	return ids, tokens
}

// listAll pages through a collection as the superuser.
func (c *pbClient) listAll(t testing.TB, super, collection, filter string) []map[string]any {
	t.Helper()
	var all []map[string]any
	for page := 1; ; page++ {
		q := url.Values{"perPage": {"500"}, "page": {strconv.Itoa(page)}, "skipTotal": {"1"}}
		if filter != "" {
			q.Set("filter", filter)
		}
		res := c.must(t, super, http.MethodGet, "/api/collections/"+collection+"/records?"+q.Encode(), nil, http.StatusOK)
		var out struct {
			Items []map[string]any `json:"items"`
		}
		if err := json.Unmarshal(res.Body, &out); err != nil {
			t.Fatal(err)
		}
		all = append(all, out.Items...)
		if len(out.Items) < 500 {
			return all
		}
	}
}

// crashAck is a message the server acknowledged.
type crashAck struct {
	id, user, text string
	media          int
}

var crashTextRE = regexp.MustCompile(`media=(\d+)$`)

func TestCrashSafetySIGKILL(t *testing.T) {
	bin, dir, server, c := startDemoPBChat(t)
	super := c.superuserToken(t)

	// 16 senders in one group (set up by the superuser, who is not rate
	// limited). Each sender's own budget is the default per-user limit.
	const senders = 16
	users, tokens := c.newUsers(t, super, "crash", senders)
	room := c.must(t, super, http.MethodPost, "/api/collections/chat_rooms/records", map[string]any{"type": "group", "name": "crash"}, http.StatusOK).Str("id")
	for _, u := range users {
		c.must(t, super, http.MethodPost, "/api/collections/chat_room_users/records",
			map[string]any{"room": room, "user": u, "permissions": advAllPermissions}, http.StatusOK)
	}

	var (
		mu        sync.Mutex
		acked     []crashAck
		ackCount  atomic.Int64
		inFlight  atomic.Int64
		rateLimit atomic.Int64
		otherErrs []string
	)
	png := chattest.PNG(4, 4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for s := 0; s < senders; s++ {
		wg.Add(1)
		go func(s int) {
			defer wg.Done()
			token := tokens[s]
			for i := 0; ctx.Err() == nil; i++ {
				k := 0
				if i%3 == 0 {
					k = 1 + (i/3)%3 // every third message carries 1–3 pictures
				}
				var media []string
				failed := false
				for j := 0; j < k; j++ {
					inFlight.Add(1)
					res, err := c.upload(ctx, token, "/api/collections/chat_media/records", "file", fmt.Sprintf("p%d.png", j), png)
					inFlight.Add(-1)
					if err != nil {
						return // the server is gone
					}
					if res.Status == http.StatusTooManyRequests {
						rateLimit.Add(1)
						failed = true
						break
					}
					if res.Status != http.StatusOK {
						mu.Lock()
						otherErrs = append(otherErrs, fmt.Sprintf("upload: %d %s", res.Status, res.Body))
						mu.Unlock()
						return
					}
					media = append(media, res.Str("id"))
				}
				if failed {
					time.Sleep(200 * time.Millisecond) // back off: the upload budget is per minute
					continue
				}
				text := fmt.Sprintf("crash u%02d n%04d media=%d", s, i, k)
				inFlight.Add(1)
				res, err := c.do(ctx, token, http.MethodPost, "/api/collections/chat_messages/records", map[string]any{"room": room, "text": text, "media": media})
				inFlight.Add(-1)
				if err != nil {
					return // the server is gone: not acknowledged
				}
				switch {
				case res.Status >= 200 && res.Status < 300:
					mu.Lock()
					acked = append(acked, crashAck{id: res.Str("id"), user: users[s], text: text, media: k})
					mu.Unlock()
					ackCount.Add(1)
				case res.Status == http.StatusTooManyRequests:
					rateLimit.Add(1)
					time.Sleep(100 * time.Millisecond)
				default:
					mu.Lock()
					otherErrs = append(otherErrs, fmt.Sprintf("message: %d %s", res.Status, res.Body))
					mu.Unlock()
					return
				}
			}
		}(s)
	}

	// Kill it once enough has been acknowledged, with requests in flight.
	const target = 300
	deadline := time.Now().Add(90 * time.Second)
	for ackCount.Load() < target || inFlight.Load() == 0 {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("only %d messages acknowledged in 90s; errors: %v", ackCount.Load(), otherErrs)
		}
		time.Sleep(time.Millisecond) // waiting for load to build up, not an assertion
	}
	flying := inFlight.Load()
	server.kill()
	wg.Wait()
	cancel()
	if len(otherErrs) > 0 {
		t.Fatalf("unexpected answers under load: %v", otherErrs[:min(len(otherErrs), 5)])
	}

	// Same data dir, new process.
	restarted := startPBChat(t, bin, dir)
	c2 := newPBClient(restarted.URL)
	super = c2.superuserToken(t)
	messages := c2.listAll(t, super, "chat_messages", "room = '"+room+"'")
	links := c2.listAll(t, super, "chat_message_media", "")
	media := c2.listAll(t, super, "chat_media", "")

	byID := map[string]map[string]any{}
	for _, m := range messages {
		byID[m["id"].(string)] = m
	}
	mediaByID := map[string]map[string]any{}
	for _, m := range media {
		mediaByID[m["id"].(string)] = m
	}
	linksOf := map[string][]map[string]any{}
	for _, l := range links {
		linksOf[l["message"].(string)] = append(linksOf[l["message"].(string)], l)
	}

	// 1. Every acknowledged message is there, as sent.
	for _, a := range acked {
		m := byID[a.id]
		if m == nil {
			t.Errorf("acknowledged message %s (%q) lost after SIGKILL", a.id, a.text)
			continue
		}
		if m["text"] != a.text || m["user"] != a.user {
			t.Errorf("message %s came back as %v, sent %q by %s", a.id, m, a.text, a.user)
		}
	}
	// 2. No message without all of its attachments, no attachment without its file.
	attachments := 0
	for _, m := range messages {
		if system, _ := m["system"].(string); system != "" {
			continue // the notices of the members' additions
		}
		id, text := m["id"].(string), m["text"].(string)
		match := crashTextRE.FindStringSubmatch(text)
		if match == nil {
			t.Errorf("unexpected message %s: %q", id, text)
			continue
		}
		want, _ := strconv.Atoi(match[1])
		got := linksOf[id]
		if len(got) != want {
			t.Errorf("half-written message %s %q: %d of %d attachments", id, text, len(got), want)
			continue
		}
		var seqs []int
		for _, l := range got {
			seqs = append(seqs, int(l["sequence"].(float64)))
			md := mediaByID[l["media"].(string)]
			if md == nil {
				t.Errorf("message %s links missing media %s", id, l["media"])
				continue
			}
			if md["uploaded_by"] != m["user"] {
				t.Errorf("message %s carries media of %v", id, md["uploaded_by"])
			}
			path := filepath.Join(dir, "storage", md["collectionId"].(string), md["id"].(string), md["file"].(string))
			if st, err := os.Stat(path); err != nil || st.Size() != int64(len(png)) {
				t.Errorf("attachment %s of message %s: file %s: %v", md["id"], id, path, err)
			}
			attachments++
		}
		slices.Sort(seqs)
		for i, s := range seqs {
			if s != i {
				t.Errorf("message %s attachment sequences %v", id, seqs)
				break
			}
		}
	}
	// 3. The database file is sound.
	restarted.stop()
	db, err := sql.Open("sqlite", filepath.Join(dir, "data.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var integrity string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&integrity); err != nil || integrity != "ok" {
		t.Errorf("integrity_check = %q, %v", integrity, err)
	}

	t.Logf("SIGKILL with %d requests in flight: %d messages acknowledged, %d present after restart (%d committed but unacknowledged), %d attachments checked, %d answers 429",
		flying, len(acked), len(messages), len(messages)-len(acked), attachments, rateLimit.Load())
	if len(messages) < len(acked) {
		t.Fatalf("fewer messages than acknowledged")
	}
}
