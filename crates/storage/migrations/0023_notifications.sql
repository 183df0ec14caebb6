-- Notifications: what a `notify` action asked for, queued in the action's transaction, and the
-- deliveries that carry them (one notification each, or a digest of many once a channel is
-- past its hourly limit). A delivery's id is stable: a receiver drops a repeat by it.
CREATE TABLE notifications (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    channel      TEXT NOT NULL,
    incident_id  INTEGER NOT NULL,
    rule         TEXT NOT NULL,
    trigger      TEXT NOT NULL,
    created      TEXT NOT NULL,
    delivery     TEXT,
    status       TEXT NOT NULL
);
CREATE INDEX notifications_waiting ON notifications (channel, delivery, id);
CREATE INDEX notifications_incident ON notifications (incident_id);

CREATE TABLE deliveries (
    id           TEXT PRIMARY KEY,
    channel      TEXT NOT NULL,
    digest       INTEGER NOT NULL,
    status       TEXT NOT NULL,
    attempts     INTEGER NOT NULL,
    next_attempt TEXT NOT NULL,
    created      TEXT NOT NULL,
    sent         TEXT,
    last_error   TEXT
);
CREATE INDEX deliveries_due ON deliveries (status, next_attempt);
CREATE INDEX deliveries_channel_created ON deliveries (channel, created);
