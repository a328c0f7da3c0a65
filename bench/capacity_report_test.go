package bench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWriteCapacitySection(t *testing.T) {
	res := &CapacityResult{Config: CapacityConfig{BigRoom: 1000, Messages: 50, Nodes: 3, PerGenerator: 5000},
		OneProcessTried: 19_500, ClientsPerProcess: 19_500, IdleBytesPerClient: 9 * 1024, CPUPerEvent: 14 * time.Microsecond}
	tests := []struct {
		name   string
		before string
		kept   []string
	}{
		{"a new file", "", nil},
		{"appended after other sections", "# Benchmarks\n\nother text\n", []string{"# Benchmarks", "other text"}},
		{"an earlier run replaced, text around it kept", "# Benchmarks\n\n" + capacityBegin + "\nold figures\n" + capacityEnd + "\n\n## Later\n", []string{"# Benchmarks", "## Later"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "BENCHMARKS.md")
			if tt.before != "" {
				if err := os.WriteFile(path, []byte(tt.before), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := WriteCapacitySection(path, res); err != nil {
				t.Fatal(err)
			}
			raw, _ := os.ReadFile(path)
			text := string(raw)
			if strings.Count(text, capacityBegin) != 1 || strings.Count(text, capacityEnd) != 1 || strings.Contains(text, "old figures") {
				t.Fatalf("one capacity section expected:\n%s", text)
			}
			if !strings.Contains(text, "| SSE clients held by one process | ≈ 19,500 | 19500 of 19500 | yes |") {
				t.Fatalf("the figures are missing:\n%s", text)
			}
			for _, k := range tt.kept {
				if !strings.Contains(text, k) {
					t.Fatalf("%q was lost:\n%s", k, text)
				}
			}
		})
	}
}

func TestCapacityFigures(t *testing.T) {
	res := &CapacityResult{OneProcessTried: 19_500, ClientsPerProcess: 19_400, IdleBytesPerClient: 10 * 1024,
		ClusterTried: 50_000, ClusterClients: 50_000, ClusterNodes: 3, BigRoomP99: 30 * time.Millisecond,
		NodeBytesPerClient: []float64{8 * 1024, 10 * 1024}}
	f := res.Figures()
	if f.Single == nil || f.Single.Held != 19_400 || f.Single.RSSPerClientKiB != 10 {
		t.Fatalf("single: %+v", f.Single)
	}
	if f.Cluster == nil || f.Cluster.Held != 50_000 || f.Cluster.Nodes != 3 || f.Cluster.BigRoomP99 != 30*time.Millisecond || f.Cluster.RSSPerClientKiB != 9 {
		t.Fatalf("cluster: %+v", f.Cluster)
	}
	if f := (&CapacityResult{}).Figures(); f.Single != nil || f.Cluster != nil {
		t.Fatalf("nothing measured, yet %+v", f)
	}
}
