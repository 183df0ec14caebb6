-- What analysts and rules decide of an indicator, per organization (one organization's verdict
-- says nothing of another's), with who and when; and the allow list an admin keeps of values
-- that are no indicators (`[indicators] exclude` at run time), applied to incidents stored
-- from then on.
CREATE TABLE indicator_verdicts (
    value         TEXT NOT NULL,
    kind          TEXT NOT NULL,
    organization  TEXT NOT NULL,
    verdict       TEXT NOT NULL,
    author        TEXT NOT NULL,
    at            TEXT NOT NULL,
    PRIMARY KEY (value, kind, organization)
);
CREATE TABLE indicator_allowlist (
    entry   TEXT PRIMARY KEY,
    author  TEXT NOT NULL,
    at      TEXT NOT NULL
);
