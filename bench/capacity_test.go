package bench

import (
	"os"
	"strconv"
	"testing"
)

// BenchmarkCapacity runs the capacity scenario once (bench.RunCapacity) at
// the sizes of PBCHAT_CAPACITY_ONE and PBCHAT_CAPACITY_CLUSTER (default
// 2,000 each; 0 skips), and writes its section into the file named by
// PBCHAT_CAPACITY_OUT, if set (PBCHAT_CAPACITY_COMPARE: the stock-vs-pbchat
// memory size, -1 skips it; PBCHAT_CAPACITY_PROFILE: a directory for the
// one-process CPU profile):
//
//	PBCHAT_CAPACITY_ONE=19500 PBCHAT_CAPACITY_CLUSTER=50000 PBCHAT_CAPACITY_OUT=$PWD/BENCHMARKS.md \
//	  go test ./bench -run '^$' -bench Capacity -benchtime 1x -timeout 60m
func BenchmarkCapacity(b *testing.B) {
	size := func(name string) int {
		if v := os.Getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				b.Fatalf("%s: %v", name, err)
			}
			return n
		}
		return 2000
	}
	cfg := CapacityConfig{OneProcessClients: size("PBCHAT_CAPACITY_ONE"), ClusterClients: size("PBCHAT_CAPACITY_CLUSTER"),
		CompareClients: size("PBCHAT_CAPACITY_COMPARE"), ProfileDir: os.Getenv("PBCHAT_CAPACITY_PROFILE"), Log: func(s string) { b.Log(s) }}
	for n := 0; n < b.N; n++ {
		res, err := RunCapacity(cfg)
		if res != nil {
			b.Log("\n" + res.Section())
		}
		if err != nil {
			b.Fatal(err)
		}
		if out := os.Getenv("PBCHAT_CAPACITY_OUT"); out != "" {
			if err := WriteCapacitySection(out, res); err != nil {
				b.Fatal(err)
			}
		}
	}
}
