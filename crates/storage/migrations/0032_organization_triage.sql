-- One organization's open incidents of one status and one severity (a customer's active
-- incidents of one severity: the triage view) are read in the queue's order from an index whose
-- keys are those filters, then the time: the page's 50 entries, where the organization's index
-- was walked testing status and severity on every entry passed (about 2,800 entries a page,
-- 0.2 ms of SQLite's time, at any size; under 32 clients the filtered page served 0.60x the
-- first page's requests per second at ten million). PostgreSQL has had such an index since its
-- migration 23. It holds open incidents only, and a query uses it only when it says
-- `status <> 'closed'` as the index does (`push_filter` says it for this view alone): every
-- other read of one organization keeps the organization's own index, whose entries tell the
-- period and the order (with a full index of these keys the planner read one organization's
-- dashboard period through this one, row by row: 535 ms at ten million, where it took 17 ms).
-- As the queue's other indexes, it holds every column a filter tests, so that owner, instance
-- and SLA filters added to these three are tested on its entries too. Its planner statistics
-- are gathered now (an empty table gets none, and neither has any index then).
CREATE INDEX incidents_organization_triage ON incidents
    (organization COLLATE NOCASE, status, severity, occurred, id, owner, instance, sla_due, closed)
    WHERE status <> 'closed';
PRAGMA analysis_limit = 1000;
ANALYZE incidents_organization_triage;
PRAGMA analysis_limit = 0;
