-- Work sharing between processes: who holds each fetch scope and mirroring target, until when
-- (milliseconds by the database's clock), with a fencing token that grows whenever the
-- holder changes; and which processes are alive.
CREATE TABLE leases (
    scope       TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    token       INTEGER NOT NULL,
    expires_ms  INTEGER NOT NULL,
    acquired_ms INTEGER NOT NULL
);

CREATE TABLE processes (
    id          TEXT PRIMARY KEY,
    host        TEXT NOT NULL,
    pid         INTEGER NOT NULL,
    started_ms  INTEGER NOT NULL,
    seen_ms     INTEGER NOT NULL
);
