package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
	"golang.org/x/crypto/bcrypt"

	"github.com/pbchat/pbchat/chatmodule"
	"github.com/pbchat/pbchat/migrations"
)

// Kind is what runs in front of the chat collections.
type Kind string

const (
	// KindPbchat is PocketBase with pbchat registered: hooks, routes, hub.
	KindPbchat Kind = "pbchat"
	// KindStock is plain PocketBase with the same six collections, pbchat's
	// read rules and a hand-written membership create rule on chat_messages:
	// what a developer gets by writing the rules by hand. No hooks.
	KindStock Kind = "stock"
)

// HandCreateRule is the chat_messages create rule of the hand-written
// baseline: the author is the caller, who is a member of the room holding
// can_create_messages. (pbchat's own create rule only asks for a user and
// answers the rest in a request hook, with a 403 naming the permission.)
const HandCreateRule = `@request.auth.id != "" && @request.auth.collectionName = "users" && user = @request.auth.id && ` +
	`room.chat_room_users_via_room.user ?= @request.auth.id && room.chat_room_users_via_room.permissions ?~ "can_create_messages"`

// App is one PocketBase app on a data dir, served over real HTTP on loopback.
type App struct {
	Kind    Kind
	Dir     string
	App     *core.BaseApp
	URL     string
	server  *http.Server
	created bool // Dir was made by NewApp and is removed by Close
}

// NewApp opens (or creates) a data dir and serves it. Request logs are off
// (they cost the same with and without pbchat and write to another database).
func NewApp(dir string, kind Kind) (*App, error) {
	created := false
	if dir == "" {
		d, err := os.MkdirTemp("", "pbchatbench-")
		if err != nil {
			return nil, err
		}
		dir, created = d, true
	}
	app := core.NewBaseApp(core.BaseAppConfig{DataDir: dir})
	if err := app.Bootstrap(); err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	if err := app.RunAllMigrations(); err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	app.Settings().Logs.MaxDays = 0
	if err := cheapUserPasswords(app); err != nil {
		return nil, err
	}

	switch kind {
	case KindPbchat:
		if err := chatmodule.Register(app, chatmodule.Config{}); err != nil {
			return nil, fmt.Errorf("register pbchat: %w", err)
		}
		if err := liftChatRateLimits(app); err != nil {
			return nil, err
		}
	case KindStock:
		settings, err := chatmodule.Config{}.WithDefaults()
		if err != nil {
			return nil, err
		}
		if err := migrations.Run(app, settings); err != nil {
			return nil, err
		}
		messages, err := app.FindCollectionByNameOrId(migrations.Messages)
		if err != nil {
			return nil, err
		}
		rule := HandCreateRule
		messages.CreateRule = &rule
		if err := app.Save(messages); err != nil {
			return nil, fmt.Errorf("hand-written create rule: %w", err)
		}
	default:
		return nil, fmt.Errorf("unknown kind %q", kind)
	}

	router, err := apis.NewRouter(app)
	if err != nil {
		return nil, err
	}
	var handler http.Handler
	err = app.OnServe().Trigger(&core.ServeEvent{App: app, Router: router}, func(e *core.ServeEvent) error {
		mux, err := e.Router.BuildMux()
		handler = mux
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	server := &http.Server{Handler: handler}
	go func() { _ = server.Serve(listener) }()
	return &App{Kind: kind, Dir: dir, App: app, URL: "http://" + listener.Addr().String(), server: server, created: created}, nil
}

// Close stops the server (dropping every connection) and the app.
func (a *App) Close() {
	_ = a.server.Close()
	// As a served app stops: connections taken over from net/http (pbchat's
	// realtime streams) end here, while the database is still open.
	_ = a.App.OnTerminate().Trigger(&core.TerminateEvent{App: a.App})
	_ = a.App.ResetBootstrapState()
	if a.created {
		_ = os.RemoveAll(a.Dir)
	}
}

// liftChatRateLimits raises pbchat's per-user rate limits (the rules
// labelled "pbchat:" in PocketBase's rate limit settings) out of reach: the
// limiter still counts every request, its cost stays in the figures, but a
// benchmark user may post thousands of messages a second.
func liftChatRateLimits(app core.App) error {
	s := app.Settings()
	changed := false
	for i, rule := range s.RateLimits.Rules {
		if strings.HasPrefix(rule.Label, "pbchat:") {
			s.RateLimits.Rules[i].MaxRequests = 1 << 30
			changed = true
		}
	}
	if !changed {
		return nil
	}
	return app.Save(s)
}

// cheapUserPasswords lowers the users' bcrypt cost, as bench/fanout_test.go does.
func cheapUserPasswords(app core.App) error {
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

// Tokens returns an auth token per user id.
func (a *App) Tokens(ids []string) (map[string]string, error) {
	out := make(map[string]string, len(ids))
	const chunk = 500
	for i := 0; i < len(ids); i += chunk {
		records, err := a.App.FindRecordsByIds("users", ids[i:min(i+chunk, len(ids))])
		if err != nil {
			return nil, err
		}
		for _, r := range records {
			token, err := r.NewAuthToken()
			if err != nil {
				return nil, err
			}
			out[r.Id] = token
		}
	}
	for _, id := range ids {
		if out[id] == "" {
			return nil, fmt.Errorf("no user %s", id)
		}
	}
	return out, nil
}

// HTTPClient is a keep-alive client for many concurrent requests to one host.
func HTTPClient(conns int) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:               nil,
			MaxIdleConns:        conns * 2,
			MaxIdleConnsPerHost: conns * 2,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		},
		Timeout: 2 * time.Minute,
	}
}

// Call sends one request and returns status and body.
func Call(ctx context.Context, client *http.Client, method, url, token string, body []byte) (int, []byte, error) {
	var reader io.Reader
	if body != nil {
		reader = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, reader)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	res, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	return res.StatusCode, out, err
}

// GetJSON sends a GET and decodes a 200 answer into v.
func GetJSON(client *http.Client, url, token string, v any) error {
	status, body, err := Call(context.Background(), client, http.MethodGet, url, token, nil)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", url, status, truncate(body, 300))
	}
	if v == nil {
		return nil
	}
	return json.Unmarshal(body, v)
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// CopyDir copies the SQLite files of a data dir (the app using it must be closed).
func CopyDir(src, dst string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() {
			continue // storage/ holds no files in these datasets
		}
		// cp --reflink=auto is much faster than io.Copy on filesystems that support it.
		cmd := exec.Command("cp", "--reflink=auto", filepath.Join(src, e.Name()), filepath.Join(dst, e.Name()))
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("copy %s: %v %s", e.Name(), err, out)
		}
	}
	return nil
}

// NewSchemaApp opens a data dir with PocketBase's and pbchat's schema and
// nothing else: no hooks, no server. For writing datasets.
func NewSchemaApp(dir string) (*core.BaseApp, error) {
	app := core.NewBaseApp(core.BaseAppConfig{DataDir: dir})
	if err := app.Bootstrap(); err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	if err := app.RunAllMigrations(); err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	if err := cheapUserPasswords(app); err != nil {
		return nil, err
	}
	settings, err := chatmodule.Config{}.WithDefaults()
	if err != nil {
		return nil, err
	}
	if err := migrations.Run(app, settings); err != nil {
		return nil, err
	}
	return app, nil
}
