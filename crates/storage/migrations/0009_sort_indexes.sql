-- Indexes for the queue's other sorts, in the order the keyset reads them (the row id breaks
-- ties), so that a sorted page reads only its rows.
CREATE INDEX incidents_by_severity ON incidents (severity);
CREATE INDEX incidents_by_sla ON incidents (sla_due, id);
