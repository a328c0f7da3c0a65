//go:build !unix

package bench

// RaiseFileLimit has nothing to raise here.
func RaiseFileLimit() {}
