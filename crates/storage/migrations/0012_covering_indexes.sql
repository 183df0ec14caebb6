-- The queue's indexes hold every column a queue filter tests, after the columns they are
-- ordered by, so that a query walking one of them tests the other filters on the index entry
-- and reads the incident's row only when it matches: filters combined (status, severity,
-- organization, owner, instance, SLA) cost a walk of index entries, not a row read each.
-- `id` is named in each, so that ties in the sort are broken by id, as the keyset pages.
-- The severity filter's own index goes: severity has six values, so a walk of the
-- occurred or SLA index finds a page of one severity soon, and a new batch of incidents wrote
-- to six places in it.
DROP INDEX incidents_status;
DROP INDEX incidents_severity;
DROP INDEX incidents_organization;
DROP INDEX incidents_owner;
DROP INDEX incidents_occurred;
DROP INDEX incidents_by_severity;
DROP INDEX incidents_by_sla;
CREATE INDEX incidents_occurred ON incidents
    (occurred, id, status, severity, organization, owner, instance, sla_due, closed);
CREATE INDEX incidents_status ON incidents
    (status, occurred, id, severity, organization, owner, instance, sla_due, closed);
CREATE INDEX incidents_organization ON incidents
    (organization COLLATE NOCASE, occurred, id, status, severity, owner, instance, sla_due, closed);
CREATE INDEX incidents_owner ON incidents
    (owner, occurred, id, status, severity, organization, instance, sla_due, closed);
CREATE INDEX incidents_by_severity ON incidents
    (severity, id, status, organization, owner, instance, sla_due, closed, occurred);
CREATE INDEX incidents_by_sla ON incidents
    (sla_due, id, status, severity, organization, owner, instance, closed, occurred);
