-- `incidents_sla_due (sla_due)` is `incidents_by_sla (sla_due, id)` again: in SQLite every index
-- ends with the row id. One copy is kept, one less index to write per incident.
DROP INDEX incidents_sla_due;
