package bench

import "syscall"

// childAttr puts a child in its own process group (so that it and its own
// children, like nginx workers, can be signalled together) and has the
// kernel send it onDeath if the rig dies without cleaning up.
func childAttr(onDeath syscall.Signal) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: onDeath}
}
