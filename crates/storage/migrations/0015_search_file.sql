-- The full-text index moves to a file of its own beside the database (`search.rs`), kept up to
-- date by its own connection beside ingest, where it took a third of the write turn. The
-- database logs which incidents' text changed or went, for the index to follow; new incidents
-- it finds by id. The new file is built from the incidents on first open.
DROP TRIGGER incidents_fts_insert;
DROP TRIGGER incidents_fts_delete;
DROP TRIGGER incidents_fts_update;
DROP TABLE incidents_fts;
CREATE TABLE text_changes (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id  INTEGER NOT NULL
);
CREATE TRIGGER text_changes_update AFTER UPDATE OF name, details, external_id ON incidents BEGIN
    INSERT INTO text_changes (incident_id) VALUES (new.id);
END;
CREATE TRIGGER text_changes_delete AFTER DELETE ON incidents BEGIN
    INSERT INTO text_changes (incident_id) VALUES (old.id);
END;
-- Which database this is, so that an index built from another is not trusted.
CREATE TABLE database_identity (id TEXT NOT NULL);
INSERT INTO database_identity VALUES (lower(hex(randomblob(16))));
