-- The severity and SLA sorts walk their index; the filter columns become its keys (after the
-- order it is walked in), so that PostgreSQL tests a filter on each entry and reads only the
-- rows that match, as migration 21 made the organization's index do. With `(severity, id)`
-- alone, one organization's queue sorted by severity read a row for each of the 8,300
-- entries it passed to find a page: 20 ms warm, 6 s cold, at ten million; 2 ms after.
-- (SQLite's sort indexes hold the same columns: migration 30 there.)
DROP INDEX incidents_by_severity;
CREATE INDEX incidents_by_severity ON incidents
    (severity, id, lower(organization), status, owner, instance, sla_due, closed, occurred);
DROP INDEX incidents_by_sla;
CREATE INDEX incidents_by_sla ON incidents
    (sla_due, id, lower(organization), status, severity, owner, instance, closed, occurred);
