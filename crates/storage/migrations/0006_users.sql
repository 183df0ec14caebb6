-- Users, their roles and organizations, and their API keys (stored as hashes).
CREATE TABLE users (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    name           TEXT NOT NULL UNIQUE,
    role           TEXT NOT NULL,
    orgs           TEXT NOT NULL DEFAULT '[]',
    password_hash  TEXT NOT NULL,
    disabled       INTEGER NOT NULL DEFAULT 0,
    created        TEXT NOT NULL
);

CREATE TABLE api_keys (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id   INTEGER NOT NULL REFERENCES users (id),
    key_hash  TEXT NOT NULL UNIQUE,
    created   TEXT NOT NULL,
    revoked   TEXT
);
