package main

import "syscall"

// childAttr makes a child die with this process, even when it is killed
// (SIGKILL leaves no chance to stop the children).
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
