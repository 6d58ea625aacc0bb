//go:build unix && !linux

package bench

import "syscall"

// childAttr puts a child in its own process group, so that it and its own
// children can be signalled together.
func childAttr(syscall.Signal) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
