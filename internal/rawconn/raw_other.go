//go:build !linux

package rawconn

import "syscall"

// Raw calls are made on Linux only; elsewhere Wrap leaves connections as
// they are, and Read and Write are the ordinary system calls.
const supported = false

// Read is read(2) (an ordinary system call on this platform).
func Read(fd uintptr, p []byte) (int, syscall.Errno) { return errnoOf(syscall.Read(sysfd(fd), p)) }

// Write is write(2) (an ordinary system call on this platform).
func Write(fd uintptr, p []byte) (int, syscall.Errno) { return SyscallWrite(fd, p) }

// SyscallWrite is write(2) as an ordinary system call.
func SyscallWrite(fd uintptr, p []byte) (int, syscall.Errno) {
	return errnoOf(syscall.Write(sysfd(fd), p))
}
