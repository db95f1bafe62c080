//go:build unix && !linux

package rawconn

func sysfd(fd uintptr) int { return int(fd) }
