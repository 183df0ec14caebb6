-- Indicators are kept as links alone (`indicators.rs`), one per (indicator, incident), keyed by
-- the indicator's value, type and organization; counts are read from the links. Every
-- incident is read again.
DROP TABLE incident_indicators;
DROP TABLE indicators;
CREATE TABLE indicator_links (
    value         TEXT COLLATE "C" NOT NULL,
    kind          TEXT COLLATE "C" NOT NULL,
    organization  TEXT COLLATE "C" NOT NULL,
    incident_id   BIGINT NOT NULL,
    occurred      TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (value, kind, organization, incident_id)
);
CREATE INDEX indicator_links_incident ON indicator_links (incident_id);
DELETE FROM indicator_queue;
INSERT INTO indicator_queue (incident_id) SELECT id FROM incidents ORDER BY id;
