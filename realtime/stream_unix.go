//go:build unix

package realtime

import (
	"errors"
	"net"
	"syscall"
)

// peerClosed reports a peer that closed its end or reset the connection,
// without waiting: one non-blocking read on the socket. A stream's client
// sends nothing after its request, so there is never data to lose.
func peerClosed(conn net.Conn) bool {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	var buf [1]byte
	var n int
	var readErr error
	if err := raw.Read(func(fd uintptr) bool {
		n, readErr = syscall.Read(int(fd), buf[:])
		return true // never wait for readability
	}); err != nil {
		return true // closed on our side
	}
	switch {
	case readErr == nil:
		return n == 0 // end of file: the peer closed
	case errors.Is(readErr, syscall.EAGAIN), errors.Is(readErr, syscall.EINTR):
		return false
	default:
		return true // reset, timed out (TCP keep-alive)
	}
}
