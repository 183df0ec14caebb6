-- Indicators, derived from the incidents beside ingest (`indicators.rs`): one row per
-- (value, type, organization in lower case, '' for none) and a link per incident. Triggers
-- queue an incident whose text changes, is made or goes, in the transaction that does it; a
-- drain reads the queue, extracts and writes in one transaction of its own.
CREATE TABLE indicators (
    id            BIGSERIAL PRIMARY KEY,
    value         TEXT COLLATE "C" NOT NULL,
    kind          TEXT COLLATE "C" NOT NULL,
    organization  TEXT COLLATE "C" NOT NULL,
    first_seen    TEXT COLLATE "C" NOT NULL,
    last_seen     TEXT COLLATE "C" NOT NULL,
    incidents     BIGINT NOT NULL,
    UNIQUE (value, kind, organization)
);
CREATE TABLE incident_indicators (
    indicator_id  BIGINT NOT NULL,
    incident_id   BIGINT NOT NULL,
    PRIMARY KEY (indicator_id, incident_id)
);
CREATE INDEX incident_indicators_incident ON incident_indicators (incident_id, indicator_id);

CREATE TABLE indicator_queue (
    seq          BIGSERIAL PRIMARY KEY,
    incident_id  BIGINT NOT NULL
);
CREATE FUNCTION queue_new_indicators() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO indicator_queue (incident_id) SELECT id FROM changed_rows;
    RETURN NULL;
END $$;
CREATE FUNCTION queue_changed_indicators() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO indicator_queue (incident_id) VALUES (NEW.id);
    RETURN NULL;
END $$;
-- Statement triggers with the rows they saw: one insert per fetch commit's statement.
CREATE TRIGGER incidents_indicators_insert AFTER INSERT ON incidents
    REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION queue_new_indicators();
CREATE TRIGGER incidents_indicators_delete AFTER DELETE ON incidents
    REFERENCING OLD TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION queue_new_indicators();
CREATE TRIGGER incidents_indicators_update AFTER UPDATE OF name, details, organization, raw_json
    ON incidents FOR EACH ROW EXECUTE FUNCTION queue_changed_indicators();
-- Incidents already stored are read once.
INSERT INTO indicator_queue (incident_id) SELECT id FROM incidents ORDER BY id;
