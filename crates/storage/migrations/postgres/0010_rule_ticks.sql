-- When each `schedule` rule last ran over its incidents.
CREATE TABLE rule_ticks (
    rule       TEXT PRIMARY KEY,
    last_tick  TEXT NOT NULL
);
