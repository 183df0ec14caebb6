-- An incident's provider record, labels and mirrored state, packed into one compressed value
-- (see crates/storage/src/record.rs): the raw record was most of a row. Rows written from
-- here on keep `raw_json` and `labels` empty and `remote_state` unset. Rows already stored
-- are packed after the upgrade, a small batch per transaction, so that the upgrade itself
-- takes no time and never holds the write lock for long: `record_repack` says how far.
-- Until a row is packed, it is read from its text columns as before. (From here on, a
-- migration cannot read a provider record in SQL.)
ALTER TABLE incidents ADD COLUMN record BLOB;
CREATE TABLE record_repack (
    upto  INTEGER NOT NULL,
    done  INTEGER NOT NULL
);
INSERT INTO record_repack (upto, done) SELECT COALESCE(MAX(id), 0), 0 FROM incidents;
