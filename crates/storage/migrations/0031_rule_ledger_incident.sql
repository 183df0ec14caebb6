-- What rules did to one incident is read by the incident (its page lists the rules that acted
-- on it) and purged with it; the ledger had no index by incident, so each read walked it whole.
CREATE INDEX rule_ledger_incident ON rule_ledger (incident_id);
