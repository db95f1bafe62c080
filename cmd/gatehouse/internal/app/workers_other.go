//go:build !linux

package app

import (
	"errors"
	"syscall"
)

func setReusePort(uintptr) error { return errors.New("workers need Linux") }

func workerProcAttr() *syscall.SysProcAttr { return nil }

// workersSupported: elsewhere SO_REUSEPORT does not spread connections
// (BSDs give them to the last socket bound), so --workers is Linux's.
const workersSupported = false
