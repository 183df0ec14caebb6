-- How many incidents each combination of the queue's filter values has (status, severity,
-- organization, owner, instance; none is ''): the queue's filter counts, read without counting
-- incidents. Updates and deletes keep it by triggers. Inserts are counted by the statements
-- that insert, in their transaction, a batch at a time (a trigger a row cost ingest a tenth).
CREATE TABLE incident_counts (
    status        TEXT NOT NULL,
    severity      REAL NOT NULL,
    organization  TEXT NOT NULL,
    owner         TEXT NOT NULL,
    instance      TEXT NOT NULL,
    n             INTEGER NOT NULL,
    PRIMARY KEY (status, severity, organization, owner, instance)
) WITHOUT ROWID;
INSERT INTO incident_counts
    SELECT status, severity, COALESCE(organization, ''), COALESCE(owner, ''), instance, COUNT(*)
    FROM incidents GROUP BY 1, 2, 3, 4, 5;
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
END;
CREATE TRIGGER incident_counts_delete AFTER DELETE ON incidents BEGIN
    UPDATE incident_counts SET n = n - 1
    WHERE status = old.status AND severity = old.severity
      AND organization = COALESCE(old.organization, '') AND owner = COALESCE(old.owner, '')
      AND instance = old.instance;
END;
