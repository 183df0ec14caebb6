-- An incident's provider record, labels and mirrored state, packed into one compressed value
-- (see crates/storage/src/record.rs and the SQLite migration 0029). Rows already stored are
-- packed after the upgrade in small batches; `record_repack` says how far.
ALTER TABLE incidents ADD COLUMN record bytea;
CREATE TABLE record_repack (
    upto  BIGINT NOT NULL,
    done  BIGINT NOT NULL
);
INSERT INTO record_repack (upto, done) SELECT COALESCE(MAX(id), 0), 0 FROM incidents;
-- The provider record never changes once stored, and packing a row moves it from one column
-- to another: that is no reason to extract its indicators again.
DROP TRIGGER incidents_indicators_update ON incidents;
CREATE TRIGGER incidents_indicators_update AFTER UPDATE OF name, details, organization
    ON incidents FOR EACH ROW EXECUTE FUNCTION queue_changed_indicators();
