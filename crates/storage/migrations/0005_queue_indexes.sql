-- Indexes for the queue's filters, each with the queue's order, so that a filter reads only
-- the rows it shows (and a filter that matches nothing reads nothing).
CREATE INDEX incidents_status ON incidents (status, occurred);
CREATE INDEX incidents_severity ON incidents (severity, occurred);
CREATE INDEX incidents_organization ON incidents (organization COLLATE NOCASE, occurred);
CREATE INDEX incidents_instance ON incidents (instance, occurred);
CREATE INDEX incidents_owner ON incidents (owner, occurred);
CREATE INDEX incidents_created ON incidents (created);
CREATE INDEX incidents_sla_due ON incidents (sla_due);
