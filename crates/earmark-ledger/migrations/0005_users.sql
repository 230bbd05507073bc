-- The people who use a home through the service. One role each; the
-- password is an argon2 hash, a token only the SHA-256 of its secret. Every
-- row carries a MAC under a key derived from the home's master key, so that
-- whoever can write the database without the key cannot raise a role or
-- plant a token.
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('admin', 'sender', 'analyst', 'auditor')),
    password_hash TEXT NOT NULL,
    must_change_password INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    mac TEXT
);
CREATE TABLE tokens (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id),
    token_hash TEXT NOT NULL UNIQUE,
    label TEXT,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    revoked_at TEXT,
    mac TEXT
);
CREATE INDEX tokens_by_user ON tokens (user_id);
