package app

import (
	"context"
	"time"
)

// upkeepInterval is how often the cross-cutting housekeeping runs.
const upkeepInterval = time.Hour

// startUpkeep runs housekeeping no single service owns, at start and then
// every upkeepInterval, on every node (each step is idempotent):
// accounts.Service.PurgeOrphans removes deployments (with their sealed
// upstream keys) and usage evidence that a deleted account left behind
// when a crash or an outage interrupted its delete; portal.SweepSessions
// deletes expired sign-in sessions; accounts.Service.PurgeExpired purges
// soft-deleted accounts past their retention (their role assignments
// with them).
func (m *Main) startUpkeep(bg context.Context) {
	m.goBackground(func() {
		t := time.NewTicker(upkeepInterval)
		defer t.Stop()
		for {
			if n, err := m.Accounts.PurgeOrphans(bg); err != nil && bg.Err() == nil {
				m.Logger.Warn("upkeep: purging what deleted accounts left failed", "err", err)
			} else if n > 0 {
				m.Logger.Info("upkeep: purged what deleted accounts left", "records", n)
			}
			if ids, err := m.Accounts.PurgeExpired(bg); err != nil && bg.Err() == nil {
				m.Logger.Warn("upkeep: purging deleted accounts past their retention failed", "err", err)
			} else if len(ids) > 0 {
				m.Logger.Info("upkeep: purged deleted accounts past their retention", "accounts", len(ids))
			}
			if n, err := m.Portal.SweepSessions(bg); err != nil && bg.Err() == nil {
				m.Logger.Warn("upkeep: deleting expired portal sessions failed", "err", err)
			} else if n > 0 {
				m.Logger.Info("upkeep: deleted expired portal sessions", "sessions", n)
			}
			select {
			case <-bg.Done():
				return
			case <-t.C:
			}
		}
	})
}
