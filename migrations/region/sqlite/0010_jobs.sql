-- Durable jobs (replication, in-region copy, volume upload, snapshot). A job is claimed with a
-- lease (lease_owner, lease_until) that its worker extends while it runs; an expired lease
-- lets any worker take the job over, resuming from `checkpoint`. `state` is generic
-- (queued, running, canceling, succeeded, failed, canceled); each API maps it to its own words.
CREATE TABLE jobs (
    id               TEXT PRIMARY KEY,
    kind             TEXT NOT NULL,
    project_id       TEXT NOT NULL,
    state            TEXT NOT NULL,
    phase            TEXT NOT NULL DEFAULT '',
    cancel_requested BIGINT NOT NULL DEFAULT 0,
    progress         BIGINT NOT NULL DEFAULT 0,
    params           TEXT NOT NULL,
    checkpoint       TEXT,
    result           TEXT,
    error            TEXT,
    attempts         BIGINT NOT NULL DEFAULT 0,
    idempotency_key  TEXT,
    lease_owner      TEXT,
    lease_until      TEXT,
    run_after        TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    started_at       TEXT,
    finished_at      TEXT
);
CREATE UNIQUE INDEX jobs_idempotency ON jobs (project_id, kind, idempotency_key);
CREATE INDEX jobs_claim ON jobs (state, run_after);
CREATE INDEX jobs_project ON jobs (project_id, kind, created_at);
