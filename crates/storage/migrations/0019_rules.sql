-- Automation rules, in the order they run: each as TOML, whether it is enabled (and why not,
-- when the breaker disabled it), and who changed it last.
CREATE TABLE rules (
    name             TEXT PRIMARY KEY,
    position         INTEGER NOT NULL,
    source           TEXT NOT NULL,
    enabled          INTEGER NOT NULL,
    disabled_reason  TEXT,
    updated_by       TEXT NOT NULL,
    updated          TEXT NOT NULL
);
