-- The region's nodes: each `glimpse` process serving the region has a stable id (its data
-- dir's `node-id`, or `[node] id`) and beats here while it runs. What a node holds in flight
-- carries its id: an image upload (`images.saving_node`), a job lease (`jobs.lease_owner`,
-- `<node>/<process>-w<n>`). A node's start-up recovery touches only its own past work; the
-- work of a node whose heartbeat is stale is taken over by the others.
CREATE TABLE nodes (
    id            TEXT PRIMARY KEY,
    host          TEXT NOT NULL,
    workers       BIGINT NOT NULL,
    started_at    TEXT NOT NULL,
    heartbeat_at  TEXT NOT NULL
);
ALTER TABLE images ADD COLUMN saving_node TEXT;
