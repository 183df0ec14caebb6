-- Mirroring: the outbox of local changes to push to providers, written in the same transaction
-- as the change; and the provider state last seen for each incident, for incoming changes.
CREATE TABLE outbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id  INTEGER NOT NULL,
    instance     TEXT NOT NULL,
    external_id  TEXT NOT NULL,
    kind         TEXT NOT NULL,
    body         TEXT NOT NULL,
    created      TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    sending      TEXT,
    last_error   TEXT,
    done         TEXT,
    outcome      TEXT
);
CREATE INDEX outbox_pending ON outbox (instance, done);
ALTER TABLE incidents ADD COLUMN remote_state TEXT;
