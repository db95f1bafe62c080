package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/gatehouse/gatehouse/storage"
	"github.com/gatehouse/gatehouse/storage/postgres"
	"github.com/gatehouse/gatehouse/storage/sqlite"
)

// Backends are chosen here, from an explicit list, and nowhere else.

func openPostgres(ctx context.Context, dsn string, logger *slog.Logger, now func() time.Time) (storage.Store, error) {
	s, err := postgres.Open(ctx, dsn, postgres.Options{Logger: logger, Now: now})
	if err != nil {
		return nil, err
	}
	return s, nil
}

func openSQLite(ctx context.Context, path string, logger *slog.Logger, now func() time.Time) (storage.Store, error) {
	s, err := sqlite.Open(ctx, path, sqlite.Options{Logger: logger, Now: now})
	if err != nil {
		return nil, err
	}
	return s, nil
}
