//go:build !linux

package rawconn

import "syscall"

// Raw calls are made on Linux only; elsewhere Wrap leaves connections as
// they are, and Read and Write are the ordinary system calls.
const supported = false

// Read is read(2) (an ordinary system call on this platform).
func Read(fd uintptr, p []byte) (int, syscall.Errno) { return errnoOf(syscall.Read(sysfd(fd), p)) }

// Write is write(2) (an ordinary system call on this platform).
func Write(fd uintptr, p []byte) (int, syscall.Errno) { return errnoOf(syscall.Write(sysfd(fd), p)) }

func errnoOf(n int, err error) (int, syscall.Errno) {
	if err == nil {
		return n, 0
	}
	if e, ok := err.(syscall.Errno); ok {
		return 0, e
	}
	return 0, syscall.EIO
}
