-- What a rule's `run` action with `cache` got from the provider: per organization (one
-- organization's answer is never shown in another's incident), instance and command line as
-- sent, with its war-room body and context outputs, and when.
CREATE TABLE enrichment_cache (
    organization  TEXT NOT NULL,
    instance      TEXT NOT NULL,
    line          TEXT NOT NULL,
    body          TEXT NOT NULL,
    context       TEXT NOT NULL,
    at            TEXT NOT NULL,
    PRIMARY KEY (organization, instance, line)
);
