package bench

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// profileNote is what the report prints under a missed target: the top
// functions of the profile of the scenario that measured it.
type profileNote struct {
	file    string   // profile file name
	summary string   // pprof's "Showing nodes accounting for …" line
	rows    []string // pprof -top rows: flat flat% sum% cum cum% function
	err     string   // why there is no list
}

func (p profileRef) key() string { return p.label + "|" + p.focus + "|" + p.sampleIndex }

// profileTopN is how many functions a note lists.
const profileTopN = 12

// AttachProfileNotes reads, for every missed target that names a profile,
// the top functions of that profile in r.ProfileDir (with `go tool pprof
// -top`: the toolchain that runs the command has it, and no dependency is
// added), so that Markdown can print them. Errors are kept in the note.
func (r *Results) AttachProfileNotes() {
	if r.ProfileNotes == nil {
		r.ProfileNotes = map[string]profileNote{}
	}
	for _, t := range r.Targets() {
		if t.profile == nil || t.met == nil || *t.met {
			continue
		}
		if _, done := r.ProfileNotes[t.profile.key()]; done {
			continue
		}
		r.ProfileNotes[t.profile.key()] = profileTop(r.ProfileDir, *t.profile, profileTopN)
	}
}

func profileTop(dir string, ref profileRef, n int) profileNote {
	note := profileNote{file: ref.label + ".pprof"}
	if dir == "" {
		note.err = "No profile in this run (profiling was off)"
		return note
	}
	path := filepath.Join(dir, note.file)
	if _, err := os.Stat(path); err != nil {
		note.err = fmt.Sprintf("No profile %s in this run", note.file)
		return note
	}
	args := []string{"tool", "pprof", "-top", fmt.Sprintf("-nodecount=%d", n)}
	if ref.focus != "" {
		args = append(args, "-focus="+ref.focus)
	}
	if ref.sampleIndex != "" {
		args = append(args, "-sample_index="+ref.sampleIndex)
	}
	args = append(args, path)
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("go", args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		note.err = fmt.Sprintf("Reading it with go tool pprof failed: %v: %s", err, strings.TrimSpace(truncate(stderr.Bytes(), 300)))
		return note
	}
	note.summary, note.rows = parsePprofTop(stdout.String())
	if len(note.rows) == 0 {
		note.err = "The profile has no samples here"
	}
	return note
}

// parsePprofTop picks the summary line and the table rows out of `go tool
// pprof -top` output.
func parsePprofTop(out string) (summary string, rows []string) {
	table := false
	for _, line := range strings.Split(out, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trimmed, "Showing nodes accounting for"):
			summary = trimmed
		case strings.HasPrefix(trimmed, "flat") && strings.Contains(trimmed, "cum%"):
			table = true
			rows = append(rows, strings.TrimRight(line, " "))
		case table && trimmed != "":
			rows = append(rows, strings.TrimRight(line, " "))
		}
	}
	if len(rows) == 1 { // header only
		rows = nil
	}
	return summary, rows
}
