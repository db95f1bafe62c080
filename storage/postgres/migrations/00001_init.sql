-- Gatehouse storage schema, PostgreSQL dialect.
--
-- Every object is created unqualified, so it lands in the connection's
-- current schema (the first schema of search_path): several deployments or
-- test runs can share one database, one schema each.
--
-- Text columns that are compared or ordered use COLLATE "C": keys order
-- bytewise (UTF-8 byte order is code point order) whatever the database's
-- default collation.

-- +goose Up
CREATE TABLE objects (
    kind     text COLLATE "C" NOT NULL,
    key      text COLLATE "C" NOT NULL,
    alt      text COLLATE "C",
    ref      text COLLATE "C",
    data     bytea       NOT NULL,
    sealed   bytea,
    expires  timestamptz,
    revision bigint      NOT NULL,
    created  timestamptz NOT NULL,
    updated  timestamptz NOT NULL,
    PRIMARY KEY (kind, key)
);

-- Alt is unique within a kind when set; NULL means "no alternate key".
CREATE UNIQUE INDEX objects_alt ON objects (kind, alt) WHERE alt IS NOT NULL;
-- List by Ref walks this index in key order.
CREATE INDEX objects_ref ON objects (kind, ref, key) WHERE ref IS NOT NULL;
CREATE INDEX objects_expires ON objects (kind, expires) WHERE expires IS NOT NULL;

-- One row per committed write, numbered by the revision counter below.
-- Revisions are gap-free; pruning only ever removes a prefix.
CREATE TABLE changes (
    revision bigint PRIMARY KEY,
    kind     text COLLATE "C" NOT NULL,
    key      text COLLATE "C" NOT NULL,
    op       text NOT NULL CHECK (op IN ('put', 'delete')),
    at       timestamptz NOT NULL
);

-- The append-only, hash-chained audit log.
CREATE TABLE audit (
    seq       bigint PRIMARY KEY,
    at        timestamptz NOT NULL,
    data      bytea NOT NULL,
    prev_hash bytea,
    hash      bytea NOT NULL
);

CREATE TABLE meta (
    name  text COLLATE "C" PRIMARY KEY,
    value bytea NOT NULL
);

-- The single-row revision counter. Every feed write starts with
-- UPDATE rev SET n = n + 1: its row lock serializes writers, so revisions
-- commit in order and a rolled-back write leaves no gap.
CREATE TABLE rev (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    n  bigint  NOT NULL
);
INSERT INTO rev (id, n) VALUES (true, 0);

-- +goose Down
DROP TABLE rev;
DROP TABLE meta;
DROP TABLE audit;
DROP TABLE changes;
DROP TABLE objects;
