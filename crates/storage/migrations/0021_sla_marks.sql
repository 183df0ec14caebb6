-- Incidents whose SLA came at risk or was breached, as the rules heard of it: each incident
-- fires `sla-at-risk` and `sla-breached` once.
CREATE TABLE sla_marks (
    incident_id  INTEGER NOT NULL,
    state        TEXT NOT NULL,
    at           TEXT NOT NULL,
    PRIMARY KEY (incident_id, state)
);
