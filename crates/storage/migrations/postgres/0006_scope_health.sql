-- Fetch health per scope (a broker organization; '' for an instance of one), so that one
-- process's success on its scopes cannot hide another's failure on its own.
CREATE TABLE scope_health (
    instance              TEXT NOT NULL,
    scope                 TEXT NOT NULL,
    last_success          TEXT,
    last_error            TEXT,
    last_error_at         TEXT,
    consecutive_failures  BIGINT NOT NULL DEFAULT 0,
    last_cycle_at         TEXT NOT NULL,
    PRIMARY KEY (instance, scope)
);
