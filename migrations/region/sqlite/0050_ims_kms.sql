-- In-region image copies (IMS) and the key manager (KMS) of one region.
--
-- Images copied with a customer master key are sealed at rest (glimpse-store `sealed`): the
-- image row keeps the key id and the image's data key wrapped by that key, in hidden columns
-- that no API shows (the `__system__encrypted` / `__system__cmkid` properties are what users
-- see). Several image rows may name the same blob (a copy shares its source's immutable
-- bytes); a blob is deleted only when no row names it any more.
ALTER TABLE images ADD COLUMN cmk_id TEXT;
ALTER TABLE images ADD COLUMN wrapped_data_key TEXT;

-- Customer master keys. `material` is the key wrapped (AES-256-GCM) by the operator's master
-- key, hex; the key itself is never stored in the clear. `state` uses Huawei KMS's codes:
-- '2' enabled, '3' disabled, '4' pending deletion (until `deletion_date`).
CREATE TABLE kms_keys (
    id            TEXT PRIMARY KEY,
    project_id    TEXT NOT NULL,
    alias         TEXT NOT NULL,
    description   TEXT NOT NULL,
    state         TEXT NOT NULL,
    material      TEXT NOT NULL,
    deletion_date TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE UNIQUE INDEX kms_keys_alias ON kms_keys (project_id, alias);
