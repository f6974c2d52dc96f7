-- Keystone's account lockout ([identity] lockout_failure_attempts, lockout_duration_seconds):
-- consecutive failed password authentications of a user and the time of the last one. A
-- successful authentication, or the end of the lockout, resets the count.
ALTER TABLE users ADD COLUMN failed_auth_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN failed_auth_at TEXT;
