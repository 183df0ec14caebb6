-- An incident's pushes are read by its id (its page shows those still waiting, and deleting
-- it removes them): an index, as PostgreSQL's schema has had from its start.
CREATE INDEX outbox_incident ON outbox (incident_id);
