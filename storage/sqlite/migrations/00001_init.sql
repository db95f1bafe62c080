-- Gatehouse storage schema, SQLite dialect.
--
-- Text columns use SQLite's default BINARY collation, so keys order bytewise.
-- Times are INTEGER microseconds since the Unix epoch (UTC); the Go side
-- converts. Tables are STRICT so a wrong type is an error, not a silent
-- conversion.

-- +goose Up
CREATE TABLE objects (
    kind     TEXT    NOT NULL,
    key      TEXT    NOT NULL,
    alt      TEXT,
    ref      TEXT,
    data     BLOB    NOT NULL,
    sealed   BLOB,
    expires  INTEGER,
    revision INTEGER NOT NULL,
    created  INTEGER NOT NULL,
    updated  INTEGER NOT NULL,
    PRIMARY KEY (kind, key)
) STRICT;

-- Alt is unique within a kind when set; NULL means "no alternate key".
CREATE UNIQUE INDEX objects_alt ON objects (kind, alt) WHERE alt IS NOT NULL;
-- List by Ref walks this index in key order.
CREATE INDEX objects_ref ON objects (kind, ref, key) WHERE ref IS NOT NULL;
CREATE INDEX objects_expires ON objects (kind, expires) WHERE expires IS NOT NULL;

-- One row per committed write, numbered by the revision counter below.
-- Revisions are gap-free; pruning only ever removes a prefix.
CREATE TABLE changes (
    revision INTEGER PRIMARY KEY,
    kind     TEXT    NOT NULL,
    key      TEXT    NOT NULL,
    op       TEXT    NOT NULL CHECK (op IN ('put', 'delete')),
    at       INTEGER NOT NULL
) STRICT;

-- The append-only, hash-chained audit log.
CREATE TABLE audit (
    seq       INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    data      BLOB    NOT NULL,
    prev_hash BLOB,
    hash      BLOB    NOT NULL
) STRICT;

CREATE TABLE meta (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
) STRICT;

-- The single-row revision counter. Every feed write starts with
-- UPDATE rev SET n = n + 1, which serializes writers.
CREATE TABLE rev (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  INTEGER NOT NULL
) STRICT;
INSERT INTO rev (id, n) VALUES (1, 0);

-- +goose Down
DROP TABLE rev;
DROP TABLE meta;
DROP TABLE audit;
DROP TABLE changes;
DROP TABLE objects;
