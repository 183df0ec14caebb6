-- Scheduled customer reports (`[[reports]]`): a row per organization, channel and period, made
-- once by whichever process first finds it due (the primary key), then claimed, sent and
-- recorded like a delivery. Its id is stable: a receiver drops a repeat by it.
CREATE TABLE report_sends (
    id           TEXT PRIMARY KEY,
    organization TEXT NOT NULL,
    channel      TEXT NOT NULL,
    period       TEXT NOT NULL,
    status       TEXT NOT NULL,
    attempts     BIGINT NOT NULL,
    next_attempt TEXT NOT NULL,
    created      TEXT NOT NULL,
    sent         TEXT,
    last_error   TEXT
);
CREATE INDEX report_sends_due ON report_sends (status, next_attempt);
