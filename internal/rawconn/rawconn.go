// Package rawconn gives the data plane's TCP connections reads and writes
// that do not enter the Go scheduler's system-call state.
//
// A read or write on a non-blocking socket never waits in the kernel: it
// copies what it can and returns (EAGAIN when there is nothing), and the
// runtime's poller does the waiting. Yet net.TCPConn makes each one an
// ordinary system call, which hands the goroutine's P to the scheduler's
// bookkeeping (entersyscall/exitsyscall) and lets sysmon take the P away
// when the call outlasts one of its 20 µs ticks. On loopback and on a busy
// machine that is common — a write carries the receiver's TCP work — and
// each such retake wakes another thread, and keeps sysmon polling every
// 20 µs instead of backing off: under load that was a tenth of the
// gateway's CPU (issue 5's profiles). Conn makes the same calls as raw
// system calls, waiting through the same poller (syscall.RawConn), so
// deadlines, Close and the poller's wake-ups behave as net.TCPConn's do.
//
// The price: a thread the kernel preempts in the middle of a raw call
// keeps its P, which sysmon no longer hands to another thread, so on a
// machine saturated by other processes the tail latency rises a little
// (p99 5-15% in bench/gateway.sh A/Bs); serve --raw-syscalls=false turns
// this package off.
//
// Only non-blocking descriptors may be used so: a raw call that blocked
// would hold its P until it returned. Sockets from the net package are
// always non-blocking.
package rawconn

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
)

// maxRW caps one read or write, as internal/poll does.
const maxRW = 1 << 30

// Conn is a *net.TCPConn whose Read and Write are raw system calls. Every
// other method (deadlines, CloseWrite, addresses, and ReadFrom/WriteTo,
// which splice through the same descriptor) is the TCPConn's.
type Conn struct {
	*net.TCPConn
	r, w side
}

// side is one direction's state: the raw call's callback and what it
// found, guarded by mu (the callbacks are bound once: a closure per call
// would allocate).
type side struct {
	mu    sync.Mutex
	p     []byte
	n     int
	errno syscall.Errno
	wait  func(func(uintptr) bool) error // the RawConn's Read or Write
	step  func(uintptr) bool
}

// run calls step through wait for p: the bytes moved, the errno that
// stopped it, and the poller's error (deadline, closed).
func (s *side) run(p []byte) (int, syscall.Errno, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.p, s.n, s.errno = p, 0, 0
	err := s.wait(s.step)
	s.p = nil
	return s.n, s.errno, err
}

// Wrap returns nc as a *Conn when it is a *net.TCPConn on a platform where
// raw calls are supported, and nc itself otherwise.
func Wrap(nc net.Conn) net.Conn {
	tc, ok := nc.(*net.TCPConn)
	if !ok || !supported {
		return nc
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nc
	}
	c := &Conn{TCPConn: tc}
	c.r.wait, c.r.step = rc.Read, c.readStep
	c.w.wait, c.w.step = rc.Write, c.writeStep
	return c
}

// Read reads as net.TCPConn's Read does: at least one byte, io.EOF at the
// end of the stream, a *net.OpError otherwise.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if len(p) > maxRW {
		p = p[:maxRW]
	}
	n, errno, err := c.r.run(p)
	switch {
	case err != nil:
		return 0, c.opError("read", err)
	case errno != 0:
		return 0, c.opError("read", os.NewSyscallError("read", errno))
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

func (c *Conn) readStep(fd uintptr) bool {
	for {
		n, errno := Read(fd, c.r.p)
		switch errno {
		case 0:
			c.r.n = n
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false // the poller waits, then this is called again
		default:
			c.r.errno = errno
			return true
		}
	}
}

// Write writes all of p, as net.TCPConn's Write does, waiting through the
// poller while the socket's buffer is full.
func (c *Conn) Write(p []byte) (int, error) {
	n, errno, err := c.w.run(p)
	switch {
	case err != nil:
		return n, c.opError("write", err)
	case errno != 0:
		return n, c.opError("write", os.NewSyscallError("write", errno))
	}
	return n, nil
}

func (c *Conn) writeStep(fd uintptr) bool {
	w := &c.w
	for w.n < len(w.p) {
		chunk := w.p[w.n:]
		if len(chunk) > maxRW {
			chunk = chunk[:maxRW]
		}
		n, errno := Write(fd, chunk)
		switch errno {
		case 0:
			if n <= 0 {
				w.errno = syscall.EIO // a write of nothing that is not EAGAIN: never loop on it
				return true
			}
			w.n += n
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			w.errno = errno
			return true
		}
	}
	return true
}

// opError gives err the shape net.TCPConn's errors have, so callers that
// look for a timeout, net.ErrClosed or a read error (net/http, crypto/tls)
// see what they would have seen. The poller's errors come as the raw
// connection's *net.OpError, renamed to op.
func (c *Conn) opError(op string, err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		oe.Op = op
		return oe
	}
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

// Listener wraps ln so that the connections it accepts are Wrap's.
func Listener(ln net.Listener) net.Listener { return listener{ln} }

type listener struct{ net.Listener }

func (l listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return Wrap(c), nil
}

// errnoOf turns an ordinary system call's result into Read's and Write's.
func errnoOf(n int, err error) (int, syscall.Errno) {
	if err == nil {
		return n, 0
	}
	if e, ok := err.(syscall.Errno); ok {
		return 0, e
	}
	return 0, syscall.EIO
}
