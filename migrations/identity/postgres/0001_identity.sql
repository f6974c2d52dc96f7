-- Identity (Keystone v3 subset): projects, users, roles, assignments, regions, tokens.
-- Booleans are 0/1 BIGINT, timestamps fixed-width UTC text, JSON as text (see db.rs).
CREATE TABLE projects (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    domain_id   TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    enabled     BIGINT NOT NULL DEFAULT 1,
    home_region TEXT NOT NULL,
    extra       TEXT NOT NULL DEFAULT '{}',
    created_at  TEXT NOT NULL,
    UNIQUE (domain_id, name)
);
CREATE TABLE users (
    id                 TEXT PRIMARY KEY,
    name               TEXT NOT NULL,
    domain_id          TEXT NOT NULL,
    password_hash      TEXT,
    enabled            BIGINT NOT NULL DEFAULT 1,
    default_project_id TEXT,
    description        TEXT NOT NULL DEFAULT '',
    email              TEXT,
    extra              TEXT NOT NULL DEFAULT '{}',
    created_at         TEXT NOT NULL,
    UNIQUE (domain_id, name)
);
CREATE TABLE roles (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT
);
CREATE TABLE role_assignments (
    user_id    TEXT NOT NULL,
    project_id TEXT NOT NULL,
    role_id    TEXT NOT NULL,
    PRIMARY KEY (user_id, project_id, role_id)
);
CREATE INDEX role_assignments_project ON role_assignments (project_id);
CREATE INDEX role_assignments_role ON role_assignments (role_id);
CREATE TABLE regions (
    id               TEXT PRIMARY KEY,
    description      TEXT NOT NULL DEFAULT '',
    parent_region_id TEXT
);
-- Tokens are opaque random strings; only their sha256 (hex) is stored.
CREATE TABLE tokens (
    hash       TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    project_id TEXT,
    methods    TEXT NOT NULL,
    audit_ids  TEXT NOT NULL,
    issued_at  TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    revoked    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX tokens_expires_at ON tokens (expires_at);
CREATE INDEX tokens_user ON tokens (user_id);
CREATE INDEX tokens_project ON tokens (project_id);
-- Small facts about this identity database (e.g. that bootstrap finished).
CREATE TABLE identity_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
