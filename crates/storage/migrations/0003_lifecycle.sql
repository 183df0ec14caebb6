-- The incident lifecycle: versions, close, assignment, SLA, context; tombstones of deleted
-- incidents; the outbox of changes to push to providers.
ALTER TABLE incidents ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE incidents ADD COLUMN closed TEXT;
ALTER TABLE incidents ADD COLUMN close_reason TEXT;
ALTER TABLE incidents ADD COLUMN close_notes TEXT;
ALTER TABLE incidents ADD COLUMN first_assigned TEXT;
ALTER TABLE incidents ADD COLUMN sla_due TEXT;
ALTER TABLE incidents ADD COLUMN context TEXT NOT NULL DEFAULT '{}';
UPDATE incidents SET sla_due = created WHERE sla_due IS NULL;

CREATE TABLE tombstones (
    instance     TEXT NOT NULL,
    external_id  TEXT NOT NULL,
    deleted      TEXT NOT NULL,
    author       TEXT NOT NULL,
    PRIMARY KEY (instance, external_id)
);
