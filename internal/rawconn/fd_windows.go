package rawconn

import "syscall"

func sysfd(fd uintptr) syscall.Handle { return syscall.Handle(fd) }
