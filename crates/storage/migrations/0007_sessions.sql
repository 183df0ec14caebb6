-- Login sessions: the hash of each session token, its user, and when it ends.
CREATE TABLE sessions (
    token_hash  TEXT PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users (id),
    created     TEXT NOT NULL,
    expires     TEXT NOT NULL
);
