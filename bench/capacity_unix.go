//go:build unix

package bench

import "syscall"

// RaiseFileLimit raises this process's soft limit of open files to its hard
// limit: a process holding thousands of connections needs a file per
// connection. Children started afterwards inherit it.
func RaiseFileLimit() {
	var limit syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &limit) != nil || limit.Cur >= limit.Max {
		return
	}
	limit.Cur = limit.Max
	_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &limit) // best effort: the run reports what connected
}
