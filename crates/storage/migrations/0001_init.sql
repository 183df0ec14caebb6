-- Incidents, their war room, fetch cursors and instance health.
CREATE TABLE incidents (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    instance      TEXT NOT NULL,
    integration   TEXT NOT NULL,
    external_id   TEXT NOT NULL,
    name          TEXT NOT NULL,
    type          TEXT NOT NULL,
    occurred      TEXT NOT NULL,
    created       TEXT NOT NULL,
    modified      TEXT NOT NULL,
    severity      REAL NOT NULL,
    status        TEXT NOT NULL DEFAULT 'pending',
    organization  TEXT,
    owner         TEXT,
    details       TEXT NOT NULL DEFAULT '',
    labels        TEXT NOT NULL DEFAULT '[]',
    raw_json      TEXT NOT NULL,
    UNIQUE (instance, external_id)
);
CREATE INDEX incidents_occurred ON incidents (occurred);

CREATE TABLE incident_entries (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id  INTEGER NOT NULL REFERENCES incidents (id),
    created      TEXT NOT NULL,
    author       TEXT NOT NULL,
    kind         TEXT NOT NULL,
    body         TEXT NOT NULL
);
CREATE INDEX incident_entries_incident ON incident_entries (incident_id);

CREATE TABLE fetch_cursors (
    instance  TEXT NOT NULL,
    scope     TEXT NOT NULL,
    cursor    TEXT NOT NULL,
    updated   TEXT NOT NULL,
    PRIMARY KEY (instance, scope)
);

CREATE TABLE instance_health (
    instance              TEXT PRIMARY KEY,
    last_success          TEXT,
    last_error            TEXT,
    last_error_at         TEXT,
    consecutive_failures  INTEGER NOT NULL DEFAULT 0,
    incidents_last_cycle  INTEGER NOT NULL DEFAULT 0,
    last_cycle_at         TEXT
);
