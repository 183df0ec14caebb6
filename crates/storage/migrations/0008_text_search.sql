-- Text search over incidents' names, details and provider ids with SQLite's full-text index
-- (FTS5), kept in step with the incidents table by triggers.
CREATE VIRTUAL TABLE incidents_fts USING fts5(
    name, details, external_id,
    content = 'incidents', content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);
INSERT INTO incidents_fts (incidents_fts) VALUES ('rebuild');
CREATE TRIGGER incidents_fts_insert AFTER INSERT ON incidents BEGIN
    INSERT INTO incidents_fts (rowid, name, details, external_id)
    VALUES (new.id, new.name, new.details, new.external_id);
END;
CREATE TRIGGER incidents_fts_delete AFTER DELETE ON incidents BEGIN
    INSERT INTO incidents_fts (incidents_fts, rowid, name, details, external_id)
    VALUES ('delete', old.id, old.name, old.details, old.external_id);
END;
CREATE TRIGGER incidents_fts_update AFTER UPDATE OF name, details, external_id ON incidents BEGIN
    INSERT INTO incidents_fts (incidents_fts, rowid, name, details, external_id)
    VALUES ('delete', old.id, old.name, old.details, old.external_id);
    INSERT INTO incidents_fts (rowid, name, details, external_id)
    VALUES (new.id, new.name, new.details, new.external_id);
END;
