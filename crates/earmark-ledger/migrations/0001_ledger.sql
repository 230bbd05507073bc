-- Recipients: people or parties who receive marked copies. Their id is the
-- recipient index carried (encrypted) by the watermark.
CREATE TABLE recipients (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE CHECK (length(name) > 0),
    email       TEXT,
    org         TEXT,
    created_at  TEXT NOT NULL
);

-- Works: registered recordings (identified by the hash of their file).
CREATE TABLE works (
    id            INTEGER PRIMARY KEY,
    content_hash  TEXT NOT NULL UNIQUE,
    title         TEXT,
    duration_s    REAL NOT NULL,
    rate          INTEGER NOT NULL,
    channels      INTEGER NOT NULL,
    created_at    TEXT NOT NULL
);

-- Copies delivered: one per work, recipient and format.
CREATE TABLE copies (
    id            INTEGER PRIMARY KEY,
    work_id       INTEGER NOT NULL REFERENCES works(id),
    recipient_id  INTEGER NOT NULL REFERENCES recipients(id),
    payload       TEXT NOT NULL,
    output_hash   TEXT NOT NULL,
    format        TEXT NOT NULL,
    path          TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    UNIQUE (work_id, recipient_id, format)
);

-- Append-only audit chain: each row's hash is an HMAC (audit key) over the
-- previous row's hash and this row's fields.
CREATE TABLE audit (
    seq        INTEGER PRIMARY KEY,
    at         TEXT NOT NULL,
    action     TEXT NOT NULL,
    detail     TEXT NOT NULL,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
);

CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
