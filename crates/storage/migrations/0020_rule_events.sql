-- What fires rules: an event per change, queued in the change's transaction (only while a rule
-- is enabled), with its causal depth; and the ledger of what each rule did with each event,
-- one row per (event, rule, action), written in the action's own transaction, so that no
-- action is done twice. Action -1 records that the rule matched the event.
CREATE TABLE rule_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id  INTEGER NOT NULL,
    trigger      TEXT NOT NULL,
    changed      TEXT NOT NULL,
    depth        INTEGER NOT NULL,
    created      TEXT NOT NULL
);

CREATE TABLE rule_ledger (
    event_id     INTEGER NOT NULL,
    rule         TEXT NOT NULL,
    action       INTEGER NOT NULL,
    incident_id  INTEGER NOT NULL,
    outcome      TEXT NOT NULL,
    detail       TEXT NOT NULL,
    at           TEXT NOT NULL,
    PRIMARY KEY (event_id, rule, action)
);
CREATE INDEX rule_ledger_rule_at ON rule_ledger (rule, at);
