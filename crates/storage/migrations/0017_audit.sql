-- The audit log of security events: logins, sessions, API keys and users.
CREATE TABLE audit (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       TEXT NOT NULL,
    actor    TEXT NOT NULL,
    action   TEXT NOT NULL,
    target   TEXT NOT NULL,
    address  TEXT,
    detail   TEXT NOT NULL
);
CREATE INDEX audit_at ON audit (at);
