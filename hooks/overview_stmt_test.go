package hooks_test

import (
	"testing"

	"github.com/pocketbase/pocketbase/core"

	"github.com/pbchat/pbchat/chatmodule"
	"github.com/pbchat/pbchat/hooks"
	"github.com/pbchat/pbchat/internal/chattest"
)

// The overview's prepared statements answer on the read pool, again once
// prepared, and inside a transaction (on its own connection, unprepared).
func TestQueryReadOnPoolAndInTransaction(t *testing.T) {
	env := chattest.New(t, chatmodule.Config{})
	user := env.NewUser("alice")
	count := func(app core.App) int {
		t.Helper()
		rows, err := hooks.QueryRead(app, "SELECT count(*) FROM users WHERE id = ?1", user.ID())
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		n := -1
		for rows.Next() {
			if err := rows.Scan(&n); err != nil {
				t.Fatal(err)
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, c := range []struct {
		name string
		run  func() int
	}{
		{"pool", func() int { return count(env.App) }},
		{"pool, prepared", func() int { return count(env.App) }},
		{"transaction", func() int {
			n := -1
			if err := env.App.RunInTransaction(func(tx core.App) error { n = count(tx); return nil }); err != nil {
				t.Fatal(err)
			}
			return n
		}},
	} {
		if got := c.run(); got != 1 {
			t.Errorf("%s: %d users, want 1", c.name, got)
		}
	}
}
