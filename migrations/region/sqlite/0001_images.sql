-- Glance v2 image records of one region (glimpse-core/src/images).
--
-- Custom properties and tags live in their own tables so that list filters run in SQL; their
-- `position` keeps insertion order (Glance shows custom properties in the order they were set).
-- `blob_key` names the image's bytes in the region's blob store and is set only by the one
-- conditional UPDATE that publishes an upload (`saving` -> `active`): a blob that no row names
-- is garbage for the cleaner. Deleting an image deletes its rows (no soft delete).
-- Timestamps are fixed-width UTC text (glimpse_types::db_time), so text order is time order.
-- The PostgreSQL copy differs only in `COLLATE "C"` on sortable text columns (so that both
-- backends sort names byte-wise, as SQLite does) and in the trigger syntax at the end.
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
    updated_at       TEXT NOT NULL
);
CREATE INDEX images_created ON images (created_at, id);
CREATE INDEX images_owner ON images (owner, created_at);
CREATE INDEX images_blob ON images (blob_key);

CREATE TABLE image_properties (
    image_id TEXT NOT NULL,
    name     TEXT NOT NULL,
    value    TEXT NOT NULL,
    position BIGINT NOT NULL,
    PRIMARY KEY (image_id, name)
);
CREATE INDEX image_properties_name ON image_properties (name, value);

CREATE TABLE image_tags (
    image_id TEXT NOT NULL,
    tag      TEXT NOT NULL,
    position BIGINT NOT NULL,
    PRIMARY KEY (image_id, tag)
);
CREATE INDEX image_tags_tag ON image_tags (tag);

CREATE TABLE image_members (
    image_id   TEXT NOT NULL,
    member_id  TEXT NOT NULL,
    status     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (image_id, member_id)
);
CREATE INDEX image_members_member ON image_members (member_id, status);

-- A counter that changes whenever any image row, property, tag or membership changes, kept
-- by triggers so that no writer can forget it. The image API caches rendered lists and
-- serves a cached page only while this counter is unchanged (read once per list request).
CREATE TABLE image_generation (
    id BIGINT PRIMARY KEY,
    n  BIGINT NOT NULL
);
INSERT INTO image_generation (id, n) VALUES (1, 0);
CREATE TRIGGER images_gen_i AFTER INSERT ON images
    BEGIN UPDATE image_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER images_gen_u AFTER UPDATE ON images
    BEGIN UPDATE image_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER images_gen_d AFTER DELETE ON images
    BEGIN UPDATE image_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER image_properties_gen_i AFTER INSERT ON image_properties
    BEGIN UPDATE image_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER image_properties_gen_u AFTER UPDATE ON image_properties
    BEGIN UPDATE image_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER image_properties_gen_d AFTER DELETE ON image_properties
    BEGIN UPDATE image_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER image_tags_gen_i AFTER INSERT ON image_tags
    BEGIN UPDATE image_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER image_tags_gen_u AFTER UPDATE ON image_tags
    BEGIN UPDATE image_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER image_tags_gen_d AFTER DELETE ON image_tags
    BEGIN UPDATE image_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER image_members_gen_i AFTER INSERT ON image_members
    BEGIN UPDATE image_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER image_members_gen_u AFTER UPDATE ON image_members
    BEGIN UPDATE image_generation SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER image_members_gen_d AFTER DELETE ON image_members
    BEGIN UPDATE image_generation SET n = n + 1 WHERE id = 1; END;
