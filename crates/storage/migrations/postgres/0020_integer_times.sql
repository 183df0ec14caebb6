-- An incident's times as integers, microseconds since 1970-01-01 UTC, in place of text, as on
-- SQLite (migration 30 there): smaller rows and indexes. Other tables keep their times as text.
-- PostgreSQL rewrites the table and its indexes once, holding its lock meanwhile.
CREATE FUNCTION wf_micros(t text) RETURNS bigint LANGUAGE sql STABLE AS
$$ SELECT CAST(EXTRACT(EPOCH FROM CAST(t AS timestamptz)) * 1000000 AS BIGINT) $$;
ALTER TABLE incidents
    ALTER COLUMN occurred TYPE BIGINT USING wf_micros(occurred),
    ALTER COLUMN created TYPE BIGINT USING wf_micros(created),
    ALTER COLUMN modified TYPE BIGINT USING wf_micros(modified),
    ALTER COLUMN closed TYPE BIGINT USING wf_micros(closed),
    ALTER COLUMN first_assigned TYPE BIGINT USING wf_micros(first_assigned),
    ALTER COLUMN sla_due TYPE BIGINT USING wf_micros(sla_due),
    ALTER COLUMN provider_updated TYPE BIGINT USING wf_micros(provider_updated),
    ALTER COLUMN provider_resolved TYPE BIGINT USING wf_micros(provider_resolved),
    ALTER COLUMN first_active TYPE BIGINT USING wf_micros(first_active);
DROP FUNCTION wf_micros(text);
