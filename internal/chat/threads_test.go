package chat

import (
	"slices"
	"strings"
	"testing"
)

func TestCheckReplyTo(t *testing.T) {
	cases := []struct {
		name   string
		parent *MessageRef
		ok     bool
	}{
		{"same room", &MessageRef{ID: "p", Room: "r1"}, true},
		{"a thread reply of the same room", &MessageRef{ID: "p", Room: "r1", Thread: "root"}, true},
		{"another room", &MessageRef{ID: "p", Room: "r2"}, false},
		{"missing", nil, false},
	}
	for _, c := range cases {
		err := CheckReplyTo("r1", c.parent)
		if (err == nil) != c.ok {
			t.Errorf("%s: err = %v, want ok %v", c.name, err, c.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "reply_to") {
			t.Errorf("%s: %q does not name reply_to", c.name, err)
		}
	}
}

func TestCheckThreadRoot(t *testing.T) {
	cases := []struct {
		name string
		root *MessageRef
		ok   bool
	}{
		{"a root of the same room", &MessageRef{ID: "p", Room: "r1"}, true},
		{"a reply (threads do not nest)", &MessageRef{ID: "p", Room: "r1", Thread: "root"}, false},
		{"another room", &MessageRef{ID: "p", Room: "r2"}, false},
		{"missing", nil, false},
	}
	for _, c := range cases {
		err := CheckThreadRoot("r1", c.root)
		if (err == nil) != c.ok {
			t.Errorf("%s: err = %v, want ok %v", c.name, err, c.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "thread") {
			t.Errorf("%s: %q does not name thread", c.name, err)
		}
	}
}

func TestCheckMentions(t *testing.T) {
	members := map[string]bool{"a": true, "b": true}
	isMember := func(u string) bool { return members[u] }
	cases := []struct {
		name  string
		total int
		added []string
		ok    bool
	}{
		{"none", 0, nil, true},
		{"members", 2, []string{"a", "b"}, true},
		{"a non-member", 2, []string{"a", "x"}, false},
		{"kept non-member (not added now)", 3, []string{"a"}, true},
		{"at the limit", MaxMentions, []string{"a"}, true},
		{"over the limit", MaxMentions + 1, []string{"a"}, false},
	}
	for _, c := range cases {
		err := CheckMentions(c.total, c.added, isMember)
		if (err == nil) != c.ok {
			t.Errorf("%s: err = %v, want ok %v", c.name, err, c.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "mentions") {
			t.Errorf("%s: %q does not name mentions", c.name, err)
		}
	}
}

func TestAddedMentions(t *testing.T) {
	cases := []struct{ before, after, want []string }{
		{nil, nil, nil},
		{nil, []string{"a", "b"}, []string{"a", "b"}},
		{[]string{"a"}, []string{"a", "b"}, []string{"b"}},
		{[]string{"a", "b"}, []string{"a"}, nil},
		{nil, []string{"a", "a"}, []string{"a"}},
	}
	for _, c := range cases {
		if got := AddedMentions(c.before, c.after); !slices.Equal(got, c.want) {
			t.Errorf("AddedMentions(%v, %v) = %v, want %v", c.before, c.after, got, c.want)
		}
	}
}
