-- Glance metadata definitions ("metadefs") of one region (glimpse-core/src/images/metadefs).
--
-- A namespace has a surrogate `id` so that renaming it (Glance allows a PUT to change
-- `namespace`) touches one row. What a namespace holds — objects, properties and tags — lives
-- in `metadef_items`, one row per (namespace, kind, name) with the item's document as JSON text
-- (`kind` is 'object', 'property' or 'tag'; a tag's document is '{}'). Resource types are a
-- catalogue seeded with a few built-ins (protected) and grown by associations that name an
-- unknown type, as Glance does. Deleting a namespace deletes its items and associations in the
-- same transaction (no foreign keys, as in the other region tables).
-- Timestamps are fixed-width UTC text (glimpse_types::db_time); booleans are 0/1 BIGINT.
CREATE TABLE metadef_namespaces (
    id           TEXT PRIMARY KEY,
    namespace    TEXT NOT NULL UNIQUE,
    display_name TEXT,
    description  TEXT,
    visibility   TEXT NOT NULL,
    protected    BIGINT NOT NULL DEFAULT 0,
    owner        TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
CREATE INDEX metadef_namespaces_owner ON metadef_namespaces (owner);

CREATE TABLE metadef_items (
    namespace_id TEXT NOT NULL,
    kind         TEXT NOT NULL,
    name         TEXT NOT NULL,
    doc          TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (namespace_id, kind, name)
);

CREATE TABLE metadef_resource_types (
    name       TEXT PRIMARY KEY,
    protected  BIGINT NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
INSERT INTO metadef_resource_types (name, protected, created_at, updated_at) VALUES
    ('OS::Glance::Image', 1, '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('OS::Cinder::Volume', 1, '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('OS::Nova::Flavor', 1, '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('OS::Nova::Server', 1, '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('OS::Nova::Aggregate', 1, '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z');

CREATE TABLE metadef_resource_type_associations (
    namespace_id      TEXT NOT NULL,
    resource_type     TEXT NOT NULL,
    prefix            TEXT,
    properties_target TEXT,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    PRIMARY KEY (namespace_id, resource_type)
);
CREATE INDEX metadef_associations_type ON metadef_resource_type_associations (resource_type);
