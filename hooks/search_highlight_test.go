package hooks

import (
	"strings"
	"testing"
)

func TestHighlight(t *testing.T) {
	long := strings.Repeat("a", 300) + "needle" + strings.Repeat("b", 300)
	cases := []struct {
		name, text string
		terms      []string
		want       string
		ok         bool
	}{
		{"marks every occurrence", "cat and CAT", []string{"cat"}, "<mark>cat</mark> and <mark>CAT</mark>", true},
		{"escapes the rest", `<i>x</i> & "x"`, []string{"x"}, `&lt;i&gt;<mark>x</mark>&lt;/i&gt; &amp; &#34;<mark>x</mark>&#34;`, true},
		{"escapes inside a mark", "a<b", []string{"a<b"}, "<mark>a&lt;b</mark>", true},
		{"merges overlaps", "abcdef", []string{"abcd", "cdef"}, "<mark>abcdef</mark>", true},
		{"adjacent terms merge", "abcdef", []string{"abc", "def"}, "<mark>abcdef</mark>", true},
		{"CJK", "東京タワー", []string{"京タ"}, "東<mark>京タ</mark>ワー", true},
		{"Unicode case", "ÉCOLE", []string{"école"}, "<mark>ÉCOLE</mark>", true},
		{"a missing term", "cat", []string{"cat", "dog"}, "", false},
		{"cut around the first match", long, []string{"needle"},
			"…" + strings.Repeat("a", snippetLead) + "<mark>needle</mark>" + strings.Repeat("b", snippetRunes-snippetLead-6) + "…", true},
		{"cut at the end", strings.Repeat("a", 300) + "end", []string{"end"},
			"…" + strings.Repeat("a", snippetRunes-3) + "<mark>end</mark>", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			terms := make([][]rune, len(c.terms))
			for i, term := range c.terms {
				terms[i] = foldRunes(term)
			}
			got, ok := highlight(c.text, terms)
			if got != c.want || ok != c.ok {
				t.Errorf("highlight(%q, %q) = %q, %v; want %q, %v", c.text, c.terms, got, ok, c.want, c.ok)
			}
		})
	}
}

func TestLikeSafe(t *testing.T) {
	cases := map[string]bool{"ab": true, "a_": true, "京タ": true, "국어": true, "é": false, "Σx": false}
	for term, want := range cases {
		if got := likeSafe(term); got != want {
			t.Errorf("likeSafe(%q) = %v, want %v", term, got, want)
		}
	}
}
