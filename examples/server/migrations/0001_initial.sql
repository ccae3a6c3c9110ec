-- Fleet server schema, version 1. Objects are stored as JSON documents keyed by their
-- identity, so the same schema works on SQLite and PostgreSQL.
CREATE TABLE IF NOT EXISTS agents (
    instance_uid TEXT PRIMARY KEY NOT NULL,
    data TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS configs (
    name TEXT PRIMARY KEY NOT NULL,
    data TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS rollouts (
    config TEXT PRIMARY KEY NOT NULL,
    data TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    old_hash TEXT,
    new_hash TEXT,
    details TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_target ON audit (target);
