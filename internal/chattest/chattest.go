// Package chattest runs a PocketBase app with pbchat behind a real HTTP
// server on loopback, for tests that act as a client would: every request
// goes through PocketBase's router, API rules, hooks and SQLite.
package chattest

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tests"

	"github.com/pbchat/pbchat/chatmodule"
	"github.com/pbchat/pbchat/migrations"
)

// Env is one app with pbchat and an HTTP server in front of it.
type Env struct {
	App    *tests.TestApp
	Server *httptest.Server
	Config chatmodule.Config
	t      testing.TB
}

// New starts an app with pbchat registered with config.
func New(t testing.TB, config chatmodule.Config) *Env {
	t.Helper()
	return NewWithSetup(t, config, nil)
}

// NewWithSetup is New with a function that runs on the bootstrapped app
// before pbchat is registered (to create another users collection, say).
func NewWithSetup(t testing.TB, config chatmodule.Config, setup func(app core.App) error) *Env {
	t.Helper()
	return newEnv(t, config, setup, func(app core.App) error { return chatmodule.Register(app, config) })
}

// NewStock starts stock PocketBase with pbchat's collections and API rules
// but none of its hooks, routes or realtime: the baseline a developer gets
// by writing the same rules by hand.
func NewStock(t testing.TB, setup func(app core.App) error) *Env {
	t.Helper()
	return newEnv(t, chatmodule.Config{}, setup, func(app core.App) error {
		settings, err := chatmodule.Config{}.WithDefaults()
		if err != nil {
			return err
		}
		return migrations.Run(app, settings)
	})
}

func newEnv(t testing.TB, config chatmodule.Config, setup, install func(app core.App) error) *Env {
	t.Helper()
	app, err := tests.NewTestApp(t.TempDir())
	if err != nil {
		t.Fatalf("test app: %v", err)
	}
	t.Cleanup(app.Cleanup)
	if setup != nil {
		if err := setup(app); err != nil {
			t.Fatalf("setup: %v", err)
		}
	}
	if err := install(app); err != nil {
		t.Fatalf("install pbchat: %v", err)
	}

	router, err := apis.NewRouter(app)
	if err != nil {
		t.Fatalf("router: %v", err)
	}
	serveEvent := &core.ServeEvent{App: app, Router: router}
	var handler http.Handler
	err = app.OnServe().Trigger(serveEvent, func(e *core.ServeEvent) error {
		mux, err := e.Router.BuildMux()
		handler = mux
		return err
	})
	if err != nil {
		t.Fatalf("serve: %v", err)
	}
	server := httptest.NewServer(handler)
	t.Cleanup(server.Close)
	return &Env{App: app, Server: server, Config: config, t: t}
}

// User is a chat user with a valid auth token.
type User struct {
	Record *core.Record
	Token  string
}

// ID is the user's record id.
func (u *User) ID() string { return u.Record.Id }

// NewUser creates a user in collection (default "users") and returns it with a token.
func (e *Env) NewUser(name string, collection ...string) *User {
	e.t.Helper()
	name = strings.ToLower(name)
	collectionName := "users"
	if len(collection) > 0 {
		collectionName = collection[0]
	}
	c, err := e.App.FindCollectionByNameOrId(collectionName)
	if err != nil {
		e.t.Fatalf("users collection: %v", err)
	}
	record := core.NewRecord(c)
	record.SetEmail(name + "@example.com")
	record.SetPassword("password-" + name)
	record.SetVerified(true)
	if c.Fields.GetByName("name") != nil {
		record.Set("name", name)
	}
	if err := e.App.Save(record); err != nil {
		e.t.Fatalf("create user %s: %v", name, err)
	}
	token, err := record.NewAuthToken()
	if err != nil {
		e.t.Fatalf("token: %v", err)
	}
	return &User{Record: record, Token: token}
}

// Superuser returns a superuser (the dashboard's account) with a token.
func (e *Env) Superuser() *User {
	e.t.Helper()
	c, err := e.App.FindCollectionByNameOrId(core.CollectionNameSuperusers)
	if err != nil {
		e.t.Fatal(err)
	}
	record := core.NewRecord(c)
	record.SetEmail("admin-" + strings.ReplaceAll(strings.ToLower(e.t.Name()), "/", "-") + "@example.com")
	record.SetPassword("password-admin")
	if err := e.App.Save(record); err != nil {
		e.t.Fatalf("create superuser: %v", err)
	}
	token, err := record.NewAuthToken()
	if err != nil {
		e.t.Fatal(err)
	}
	return &User{Record: record, Token: token}
}

// Response is a decoded HTTP answer.
type Response struct {
	Status int
	Body   []byte
}

// JSON decodes the body as an object.
func (r *Response) JSON() map[string]any {
	var out map[string]any
	_ = json.Unmarshal(r.Body, &out)
	return out
}

// String returns the body as text.
func (r *Response) String() string { return string(r.Body) }

// Str returns a top-level string field of a JSON object body.
func (r *Response) Str(key string) string {
	s, _ := r.JSON()[key].(string)
	return s
}

// Items returns the "items" of a list answer.
func (r *Response) Items() []map[string]any {
	var out struct {
		Items []map[string]any `json:"items"`
	}
	_ = json.Unmarshal(r.Body, &out)
	return out.Items
}

// Do sends a JSON request as user (nil: anonymous).
func (e *Env) Do(user *User, method, path string, body any) *Response {
	e.t.Helper()
	return e.DoAt(e.Server.URL, user, method, path, body)
}

// DoAt sends a JSON request to another server (a realtime node) as user.
func (e *Env) DoAt(baseURL string, user *User, method, path string, body any) *Response {
	e.t.Helper()
	var reader io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		reader = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, baseURL+path, reader)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return e.send(user, req)
}

// File is one file of a multipart upload.
type File struct {
	Field, Name string
	Content     []byte
}

// Upload sends a multipart request with fields and files as user.
func (e *Env) Upload(user *User, method, path string, fields map[string]string, files ...File) *Response {
	e.t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for k, v := range fields {
		_ = w.WriteField(k, v)
	}
	for _, f := range files {
		part, err := w.CreateFormFile(f.Field, f.Name)
		if err != nil {
			e.t.Fatal(err)
		}
		_, _ = part.Write(f.Content)
	}
	_ = w.Close()
	req, err := http.NewRequest(method, e.Server.URL+path, &buf)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", w.FormDataContentType())
	return e.send(user, req)
}

func (e *Env) send(user *User, req *http.Request) *Response {
	e.t.Helper()
	if user != nil {
		req.Header.Set("Authorization", user.Token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return &Response{Status: res.StatusCode, Body: body}
}

// Count returns how many records of collection match filter (superuser view).
func (e *Env) Count(collection, filter string, params ...dbx.Params) int {
	e.t.Helper()
	records, err := e.App.FindRecordsByFilter(collection, filterOrAll(filter), "", 0, 0, params...)
	if err != nil {
		e.t.Fatalf("count %s where %s: %v", collection, filter, err)
	}
	return len(records)
}

func filterOrAll(filter string) string {
	if filter == "" {
		return "id != ''"
	}
	return filter
}
