-- SQLite's 0014_incident_counts_version.sql: a number that grows with every change of
-- `incident_counts`, in the same transaction.
CREATE TABLE incident_counts_version (
    id  BIGINT PRIMARY KEY CHECK (id = 1),
    v   BIGINT NOT NULL
);
INSERT INTO incident_counts_version VALUES (1, 0);
CREATE OR REPLACE FUNCTION incident_counts_change() RETURNS trigger LANGUAGE plpgsql AS $$
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
    UPDATE incident_counts_version SET v = v + 1;
    RETURN NULL;
END
$$;
