-- Work sharing between processes: who holds each fetch scope and mirroring target, until when
-- (milliseconds by the database's clock), with a fencing token that grows whenever the
-- holder changes; and which processes are alive.
CREATE TABLE leases (
    scope       TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    token       BIGINT NOT NULL,
    expires_ms  BIGINT NOT NULL,
    acquired_ms BIGINT NOT NULL
);

CREATE TABLE processes (
    id          TEXT PRIMARY KEY,
    host        TEXT NOT NULL,
    pid         BIGINT NOT NULL,
    started_ms  BIGINT NOT NULL,
    seen_ms     BIGINT NOT NULL
);
