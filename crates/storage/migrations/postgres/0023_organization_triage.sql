-- One organization's queue filtered by status and severity (a customer's active incidents of
-- one severity: the triage view) is read in its order from an index whose keys are those
-- filters, then the time: the page's 50 entries, where the organization's index was walked
-- testing status and severity on every entry passed (about 2,800 entries a page at a million
-- incidents, and a third of PostgreSQL's time under 32 clients). SQLite tests them on its
-- covering organization index as cheaply; its ingest has a target and keeps its indexes.
CREATE INDEX incidents_organization_triage ON incidents
    (lower(organization), status, severity, occurred, id);
