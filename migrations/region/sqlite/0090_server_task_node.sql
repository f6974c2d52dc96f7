-- The node that runs a server's synchronous task (the write-disk extension), so that only that
-- node's restart, or its heartbeat going stale, ends the task (see 0080_nodes.sql).
ALTER TABLE servers ADD COLUMN task_node TEXT;
