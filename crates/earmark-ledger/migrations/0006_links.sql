-- Delivery links: a recipient downloads their copy of a work through a link
-- whose secret is kept only as its SHA-256; the copy is rendered when first
-- fetched. Every download is recorded with when, from where and by what.
-- Rows carry a MAC under a key derived from the home's master key, so that
-- whoever can write the database without the key cannot revive a revoked
-- link, lift its limits or plant a download.
CREATE TABLE links (
    id INTEGER PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    work_id INTEGER NOT NULL REFERENCES works (id),
    recipient_id INTEGER NOT NULL REFERENCES recipients (id),
    format TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    max_downloads INTEGER,
    downloads INTEGER NOT NULL DEFAULT 0,
    revoked_at TEXT,
    mac TEXT
);
CREATE INDEX links_by_copy ON links (work_id, recipient_id);
CREATE TABLE downloads (
    id INTEGER PRIMARY KEY,
    link_id INTEGER NOT NULL REFERENCES links (id),
    at TEXT NOT NULL,
    ip TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    counted INTEGER NOT NULL DEFAULT 1,
    mac TEXT
);
CREATE INDEX downloads_by_link ON downloads (link_id);
