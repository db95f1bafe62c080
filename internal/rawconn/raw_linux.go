package rawconn

import (
	"syscall"
	"unsafe"
)

const supported = true

// Read is read(2) on a non-blocking descriptor as a raw system call.
func Read(fd uintptr, p []byte) (int, syscall.Errno) {
	if len(p) == 0 {
		return 0, 0
	}
	n, _, errno := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	return int(n), errno
}

// Write is write(2) on a non-blocking descriptor as a raw system call.
func Write(fd uintptr, p []byte) (int, syscall.Errno) {
	if len(p) == 0 {
		return 0, 0
	}
	n, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	return int(n), errno
}

// SyscallWrite is write(2) as an ordinary system call (the scheduler's
// system-call state entered), for callers with raw calls switched off.
func SyscallWrite(fd uintptr, p []byte) (int, syscall.Errno) {
	return errnoOf(syscall.Write(int(fd), p))
}
