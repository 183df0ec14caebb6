-- One organization's queue filtered by status, severity or owner: the filter columns become
-- keys of the organization's index (after the order it is walked in), so that PostgreSQL tests
-- them on each index entry, as an index condition, and reads only the rows that match. It
-- ANDed the organization's and the severity's bitmaps instead, read every matching row and
-- sorted them (46.9 ms p99 for the filtered page under 32 clients at a million incidents).
-- Columns an index only INCLUDEs are tested in index-only scans alone, which a page of whole
-- rows is not. `created` bounds one organization's dashboard period and report months on
-- the entries too. (SQLite's organization index holds the same columns: migration 30 there.)
DROP INDEX incidents_organization;
CREATE INDEX incidents_organization ON incidents
    (lower(organization), occurred, id, status, severity, owner, instance, sla_due, closed, created);
