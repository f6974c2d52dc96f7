-- Glance v2 image records. Custom properties and tags live in their own tables so that
-- list filters run in SQL. `blob_key` is set only when the image is active (publish last).
CREATE TABLE images (
    id               TEXT PRIMARY KEY,
    name             TEXT,
    owner            TEXT NOT NULL,
    status           TEXT NOT NULL,
    visibility       TEXT NOT NULL,
    protected        BIGINT NOT NULL DEFAULT 0,
    os_hidden        BIGINT NOT NULL DEFAULT 0,
    disk_format      TEXT,
    container_format TEXT,
    size             BIGINT,
    virtual_size     BIGINT,
    checksum         TEXT,
    os_hash_algo     TEXT,
    os_hash_value    TEXT,
    min_disk         BIGINT NOT NULL DEFAULT 0,
    min_ram          BIGINT NOT NULL DEFAULT 0,
    blob_key         TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    deleted          BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX images_owner ON images (owner);
CREATE INDEX images_created ON images (created_at, id);
CREATE TABLE image_properties (
    image_id TEXT NOT NULL,
    name     TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (image_id, name)
);
CREATE TABLE image_tags (
    image_id TEXT NOT NULL,
    tag      TEXT NOT NULL,
    PRIMARY KEY (image_id, tag)
);
CREATE TABLE image_members (
    image_id   TEXT NOT NULL,
    member_id  TEXT NOT NULL,
    status     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (image_id, member_id)
);
CREATE INDEX image_members_member ON image_members (member_id);
