-- Compute (Nova subset): servers and their root disks. A server's disk is a qcow2 overlay
-- under the region's disk dir (`disk_path`, relative to it) over a cached copy of its image
-- (`base_path`, relative, and `base_format`). `task_state` holds Nova's task while a build or
-- a snapshot job runs (`snapshot_image` = the image that snapshot is making). Flavors are
-- fixed in code. Deleting a server deletes its row (Nova soft-deletes; GET then gives 404).
CREATE TABLE servers (
    id              TEXT COLLATE "C" PRIMARY KEY,
    project_id      TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    name            TEXT NOT NULL,
    image_id        TEXT NOT NULL,
    flavor_id       TEXT NOT NULL,
    vm_state        TEXT NOT NULL,
    task_state      TEXT,
    power_state     BIGINT NOT NULL,
    metadata        TEXT NOT NULL,
    access_ipv4     TEXT NOT NULL DEFAULT '',
    access_ipv6     TEXT NOT NULL DEFAULT '',
    base_path       TEXT,
    base_format     TEXT,
    disk_path       TEXT,
    disk_size       BIGINT,
    snapshot_image  TEXT,
    fault           TEXT,
    image_meta      TEXT NOT NULL,
    created_at      TEXT COLLATE "C" NOT NULL,
    updated_at      TEXT NOT NULL,
    launched_at     TEXT
);
CREATE INDEX servers_project ON servers (project_id, created_at);
