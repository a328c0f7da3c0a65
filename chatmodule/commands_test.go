package chatmodule_test

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/pocketbase/pocketbase"

	"github.com/pbchat/pbchat/chatmodule"
)

// `chat demo` fills an empty data dir once and prints the logins; `chat
// stats` counts the users and every chat collection. Each run is a new
// process's app on the same data dir, as on the command line.
func TestChatCommands(t *testing.T) {
	dir := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		app := pocketbase.NewWithConfig(pocketbase.Config{DefaultDataDir: dir, HideStartBanner: true})
		chatmodule.MustRegister(app, chatmodule.Config{})
		var out bytes.Buffer
		app.RootCmd.SetOut(&out)
		app.RootCmd.SetArgs(args)
		if err := app.Execute(); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		return out.String()
	}

	first := run("chat", "demo")
	if !strings.Contains(first, "alice@example.com") || !strings.Contains(first, chatmodule.DemoPassword) || strings.Contains(first, "already there") {
		t.Errorf("first `chat demo` printed:\n%s", first)
	}
	if again := run("chat", "demo"); !strings.Contains(again, "Demo data is already there.") {
		t.Errorf("second `chat demo` printed:\n%s", again)
	}

	stats := run("chat", "stats")
	for _, want := range []string{`users\s+4`, `chat_rooms\s+4`, `chat_room_users\s+9`, `chat_messages\s+13`,
		`chat_media\s+0`, `chat_message_media\s+0`, `chat_message_reactions\s+3`} {
		if !regexp.MustCompile(`(?m)^` + want + `$`).MatchString(stats) {
			t.Errorf("`chat stats` has no line %q:\n%s", want, stats)
		}
	}
}
