-- How many incidents each combination of the queue's filter values has: SQLite's
-- 0013_incident_counts.sql, whose comment says how it is kept.
CREATE TABLE incident_counts (
    status        TEXT COLLATE "C" NOT NULL,
    severity      DOUBLE PRECISION NOT NULL,
    organization  TEXT COLLATE "C" NOT NULL,
    owner         TEXT COLLATE "C" NOT NULL,
    instance      TEXT COLLATE "C" NOT NULL,
    n             BIGINT NOT NULL,
    PRIMARY KEY (status, severity, organization, owner, instance)
);
INSERT INTO incident_counts
    SELECT status, severity, COALESCE(organization, ''), COALESCE(owner, ''), instance, COUNT(*)
    FROM incidents GROUP BY 1, 2, 3, 4, 5;
CREATE FUNCTION incident_counts_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE incident_counts SET n = n - 1
    WHERE status = OLD.status AND severity = OLD.severity
      AND organization = COALESCE(OLD.organization, '') AND owner = COALESCE(OLD.owner, '')
      AND instance = OLD.instance;
    IF TG_OP = 'UPDATE' THEN
        INSERT INTO incident_counts VALUES (NEW.status, NEW.severity,
            COALESCE(NEW.organization, ''), COALESCE(NEW.owner, ''), NEW.instance, 1)
        ON CONFLICT (status, severity, organization, owner, instance)
        DO UPDATE SET n = incident_counts.n + 1;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER incident_counts_update
AFTER UPDATE OF status, severity, organization, owner, instance ON incidents
FOR EACH ROW EXECUTE FUNCTION incident_counts_change();
CREATE TRIGGER incident_counts_delete AFTER DELETE ON incidents
FOR EACH ROW EXECUTE FUNCTION incident_counts_change();
