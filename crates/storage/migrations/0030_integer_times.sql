-- An incident's times as integers, microseconds since 1970-01-01 UTC, in place of 27-byte
-- text: the six queue indexes each repeat `occurred` and `sla_due`, so the row and its
-- indexes take about a fifth less (bench/RESULTS.md, "Storage per incident"). Other tables keep
-- their times as text. SQLite cannot change a column's type, so the table is rebuilt: a new
-- one filled from the old, which is then dropped, and the indexes and triggers made again.
-- This one runs with foreign keys off (see `SqlStore::migrate`), holds the write lock while it
-- copies (about 3 s per 100,000 incidents on two cores) and needs the table's size again on
-- disk.
CREATE TABLE incidents_next (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    instance           TEXT NOT NULL,
    integration        TEXT NOT NULL,
    external_id        TEXT NOT NULL,
    name               TEXT NOT NULL,
    type               TEXT NOT NULL,
    occurred           INTEGER NOT NULL,
    created            INTEGER NOT NULL,
    modified           INTEGER NOT NULL,
    severity           REAL NOT NULL,
    status             TEXT NOT NULL DEFAULT 'pending',
    organization       TEXT,
    owner              TEXT,
    details            TEXT NOT NULL DEFAULT '',
    labels             TEXT NOT NULL DEFAULT '[]',
    raw_json           TEXT NOT NULL,
    version            INTEGER NOT NULL DEFAULT 1,
    closed             INTEGER,
    close_reason       TEXT,
    close_notes        TEXT,
    first_assigned     INTEGER,
    sla_due            INTEGER,
    context            TEXT NOT NULL DEFAULT '{}',
    remote_state       TEXT,
    provider_updated   INTEGER,
    provider_resolved  INTEGER,
    first_active       INTEGER,
    record             BLOB,
    UNIQUE (instance, external_id)
);
INSERT INTO incidents_next
SELECT id, instance, integration, external_id, name, type,
    unixepoch(occurred) * 1000000 + CAST(substr(occurred, 21, 6) AS INTEGER),
    unixepoch(created) * 1000000 + CAST(substr(created, 21, 6) AS INTEGER),
    unixepoch(modified) * 1000000 + CAST(substr(modified, 21, 6) AS INTEGER),
    severity, status, organization, owner, details, labels, raw_json, version,
    unixepoch(closed) * 1000000 + CAST(substr(closed, 21, 6) AS INTEGER),
    close_reason, close_notes,
    unixepoch(first_assigned) * 1000000 + CAST(substr(first_assigned, 21, 6) AS INTEGER),
    unixepoch(sla_due) * 1000000 + CAST(substr(sla_due, 21, 6) AS INTEGER),
    context, remote_state,
    unixepoch(provider_updated) * 1000000 + CAST(substr(provider_updated, 21, 6) AS INTEGER),
    unixepoch(provider_resolved) * 1000000 + CAST(substr(provider_resolved, 21, 6) AS INTEGER),
    unixepoch(first_active) * 1000000 + CAST(substr(first_active, 21, 6) AS INTEGER),
    record
FROM incidents ORDER BY id;
-- Ids are never given twice: the new table's counter goes on from the old one's.
UPDATE sqlite_sequence SET seq = MAX(seq, COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'incidents'), 0))
WHERE name = 'incidents_next';
INSERT INTO sqlite_sequence (name, seq)
SELECT 'incidents_next', seq FROM sqlite_sequence WHERE name = 'incidents'
AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'incidents_next');
DROP TABLE incidents;
ALTER TABLE incidents_next RENAME TO incidents;
CREATE INDEX incidents_instance ON incidents (instance, occurred);
CREATE INDEX incidents_created ON incidents (created);
CREATE INDEX incidents_occurred ON incidents
    (occurred, id, status, severity, organization, owner, instance, sla_due, closed);
CREATE INDEX incidents_status ON incidents
    (status, occurred, id, severity, organization, owner, instance, sla_due, closed);
-- One organization's index holds when its incidents were stored too: its dashboard's period
-- and its reports' months are told on the index's entries, so that only the period's rows are
-- read (at ten million, 50,000 rows read for one organization's 14 days: 150 ms, now 14 ms).
CREATE INDEX incidents_organization ON incidents
    (organization COLLATE NOCASE, occurred, id, status, severity, owner, instance, sla_due, closed, created);
CREATE INDEX incidents_owner ON incidents
    (owner, occurred, id, status, severity, organization, instance, sla_due, closed);
CREATE INDEX incidents_by_severity ON incidents
    (severity, id, status, organization, owner, instance, sla_due, closed, occurred);
CREATE INDEX incidents_by_sla ON incidents
    (sla_due, id, status, severity, organization, owner, instance, closed, occurred);
CREATE TRIGGER incident_counts_update
AFTER UPDATE OF status, severity, organization, owner, instance ON incidents BEGIN
    UPDATE incident_counts SET n = n - 1
    WHERE status = old.status AND severity = old.severity
      AND organization = COALESCE(old.organization, '') AND owner = COALESCE(old.owner, '')
      AND instance = old.instance;
    INSERT INTO incident_counts VALUES (new.status, new.severity,
        COALESCE(new.organization, ''), COALESCE(new.owner, ''), new.instance, 1)
    ON CONFLICT (status, severity, organization, owner, instance)
    DO UPDATE SET n = incident_counts.n + 1;
    UPDATE incident_counts_version SET v = v + 1;
END;
CREATE TRIGGER incident_counts_delete AFTER DELETE ON incidents BEGIN
    UPDATE incident_counts SET n = n - 1
    WHERE status = old.status AND severity = old.severity
      AND organization = COALESCE(old.organization, '') AND owner = COALESCE(old.owner, '')
      AND instance = old.instance;
    UPDATE incident_counts_version SET v = v + 1;
END;
CREATE TRIGGER text_changes_update AFTER UPDATE OF name, details, external_id ON incidents BEGIN
    INSERT INTO text_changes (incident_id) VALUES (new.id);
END;
CREATE TRIGGER text_changes_delete AFTER DELETE ON incidents BEGIN
    INSERT INTO text_changes (incident_id) VALUES (old.id);
END;
-- Dropping the old table dropped its planner statistics: the new one's are gathered now (from
-- a sample of each index, so that this takes seconds at ten million), or the queue's filters
-- would be planned blind until the next `PRAGMA optimize` found them missing. (An empty table
-- gets none.)
PRAGMA analysis_limit = 1000;
ANALYZE incidents;
PRAGMA analysis_limit = 0;
