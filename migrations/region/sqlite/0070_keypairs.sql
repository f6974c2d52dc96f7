-- Nova key pairs: per user (not per project), named, with the public key and its
-- fingerprint; a server records the key pair name it was created with.
CREATE TABLE keypairs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      TEXT NOT NULL,
    name         TEXT NOT NULL,
    type         TEXT NOT NULL,
    public_key   TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    UNIQUE (user_id, name)
);
ALTER TABLE servers ADD COLUMN key_name TEXT;
