package app

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// setReusePort lets every worker bind the node's ports (workers.go).
func setReusePort(fd uintptr) error {
	return unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
}

// workerProcAttr makes a worker die with worker 0 (SIGTERM when the thread
// that started it ends, which Supervisor.start holds until the worker
// exits).
func workerProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}

// workersSupported: SO_REUSEPORT spreads connections over the workers.
const workersSupported = true
