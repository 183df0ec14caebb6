-- A number that grows whenever `incident_counts` changes, in the same transaction, so that a
-- process can keep the counts in memory and read them again only when they changed.
CREATE TABLE incident_counts_version (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    v   INTEGER NOT NULL
);
INSERT INTO incident_counts_version VALUES (1, 0);
DROP TRIGGER incident_counts_update;
DROP TRIGGER incident_counts_delete;
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
