-- Volumes (the Cinder subset): each volume is a sparse raw file under the region's volume
-- directory, named by its id. `status` is Cinder's word (creating, available, in-use,
-- attaching, detaching, uploading, deleting, error); `previous_status` is where an upload
-- returns to. `image_metadata` (JSON object) is the Glance metadata of the image a volume was
-- made from (Cinder's volume_glance_metadata); `metadata` the user's key/values (JSON).
CREATE TABLE volumes (
    id                TEXT PRIMARY KEY,
    project_id        TEXT NOT NULL,
    user_id           TEXT NOT NULL,
    name              TEXT,
    description       TEXT,
    size_gb           BIGINT NOT NULL,
    status            TEXT NOT NULL,
    previous_status   TEXT,
    volume_type       TEXT NOT NULL,
    availability_zone TEXT NOT NULL,
    bootable          BIGINT NOT NULL DEFAULT 0,
    source_image_id   TEXT,
    image_metadata    TEXT NOT NULL DEFAULT '{}',
    metadata          TEXT NOT NULL DEFAULT '{}',
    created_at        TEXT NOT NULL,
    updated_at        TEXT
);
CREATE INDEX volumes_project ON volumes (project_id, created_at);

-- A volume's attachment to a server of the same project (no multiattach: one per volume).
-- `attach_status` is `attaching` (reserved) or `attached`.
CREATE TABLE volume_attachments (
    id            TEXT PRIMARY KEY,
    volume_id     TEXT NOT NULL,
    server_id     TEXT,
    project_id    TEXT NOT NULL,
    mountpoint    TEXT,
    attach_status TEXT NOT NULL,
    attached_at   TEXT,
    created_at    TEXT NOT NULL
);
CREATE UNIQUE INDEX volume_attachments_volume ON volume_attachments (volume_id);
CREATE INDEX volume_attachments_server ON volume_attachments (server_id);
