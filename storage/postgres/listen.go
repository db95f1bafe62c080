package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// Notify implements storage.Feed. Subscribers are woken after commits of
// this Store (in-process, right after the commit) and after commits of any
// Store on the same schema (through LISTEN). They are also woken after the
// listener (re)connects, so that changes committed while it was not
// listening are read then. The first call starts the listener; it runs
// until Close.
func (s *Store) Notify(ctx context.Context) <-chan struct{} {
	ch := s.hub.Subscribe(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopListen == nil && !s.closed {
		lctx, cancel := context.WithCancel(context.Background())
		s.stopListen, s.listenDone = cancel, make(chan struct{})
		go s.listen(lctx)
	}
	return ch
}

// listen keeps a LISTEN connection open until ctx is done, reconnecting
// with exponential backoff (reset after every successful connection).
func (s *Store) listen(ctx context.Context) {
	defer close(s.listenDone)
	delay := s.backoff[0]
	for {
		listened, err := s.listenConn(ctx)
		if ctx.Err() != nil {
			return
		}
		if listened {
			delay = s.backoff[0]
		}
		s.log.Warn("change feed: listener disconnected; reconnecting", "err", err, "in", delay)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		delay = min(2*delay, s.backoff[1])
	}
}

// listenConn connects, listens and wakes subscribers on every notification
// until the connection fails. listened reports whether LISTEN succeeded.
func (s *Store) listenConn(ctx context.Context) (listened bool, err error) {
	conn, err := pgx.ConnectConfig(ctx, s.listenC)
	if err != nil {
		return false, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn.Close(cctx)
	}()
	if s.onListen != nil {
		s.onListen(conn.PgConn().PID())
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		return false, err
	}
	// The gap repair: whatever was committed while no listener was
	// registered produced notifications nobody received. Waking every
	// subscriber makes it read the changes table from its last revision.
	s.hub.Wake()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return true, err
		}
		s.hub.Wake()
	}
}
