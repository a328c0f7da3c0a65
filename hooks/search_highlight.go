package hooks

import (
	"html"
	"slices"
	"strings"
	"unicode"
)

const (
	// snippetRunes is the longest highlight, in characters, before the
	// ellipses; snippetLead is how much of the text before the first match
	// it keeps when it has to cut.
	snippetRunes = 200
	snippetLead  = 60
)

// foldRunes is s lowered character by character: the same case folding
// as the index's (trigram, case_sensitive 0), one rune for one rune, so
// positions in it are positions in s.
func foldRunes(s string) []rune {
	runes := []rune(s)
	for i, r := range runes {
		runes[i] = unicode.ToLower(r)
	}
	return runes
}

// matchSpans returns the [start, end) rune ranges of text where a term
// (already folded) occurs, merged and in order; nil when some term does
// not occur (a search matches only messages that hold every term).
func matchSpans(text []rune, terms [][]rune) [][2]int {
	var spans [][2]int
	for _, term := range terms {
		found := false
		for i := 0; i+len(term) <= len(text); i++ {
			if slices.Equal(text[i:i+len(term)], term) {
				spans = append(spans, [2]int{i, i + len(term)})
				found = true
			}
		}
		if !found {
			return nil
		}
	}
	slices.SortFunc(spans, func(a, b [2]int) int { return a[0] - b[0] })
	merged := spans[:0]
	for _, s := range spans {
		if n := len(merged); n > 0 && s[0] <= merged[n-1][1] {
			merged[n-1][1] = max(merged[n-1][1], s[1])
			continue
		}
		merged = append(merged, s)
	}
	return merged
}

// highlight is text with each matched part in <mark></mark> and everything
// else HTML-escaped, cut to about snippetRunes characters around the first
// match (an ellipsis marks each cut). ok is false when a term is missing.
func highlight(text string, terms [][]rune) (snippet string, ok bool) {
	runes := []rune(text)
	spans := matchSpans(foldRunes(text), terms)
	if spans == nil {
		return "", false
	}
	start, end := 0, len(runes)
	if len(runes) > snippetRunes {
		start = max(0, spans[0][0]-snippetLead)
		end = min(len(runes), start+snippetRunes)
		start = max(0, end-snippetRunes)
	}
	var b strings.Builder
	if start > 0 {
		b.WriteString("…")
	}
	at := start
	for _, s := range spans {
		from, to := max(s[0], start), min(s[1], end)
		if from >= to {
			continue
		}
		b.WriteString(html.EscapeString(string(runes[at:from])))
		b.WriteString("<mark>")
		b.WriteString(html.EscapeString(string(runes[from:to])))
		b.WriteString("</mark>")
		at = to
	}
	b.WriteString(html.EscapeString(string(runes[at:end])))
	if end < len(runes) {
		b.WriteString("…")
	}
	return b.String(), true
}
