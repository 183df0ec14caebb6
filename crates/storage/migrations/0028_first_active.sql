-- When an incident first became active (an analyst, a rule or the provider took it up): our
-- time to acknowledge, in reports. Kept by every change from here on; incidents changed before
-- get it from the first war-room entry that made them active.
ALTER TABLE incidents ADD COLUMN first_active TEXT;
UPDATE incidents
SET first_active = (
    SELECT MIN(e.created) FROM incident_entries e
    WHERE e.incident_id = incidents.id
      AND (e.body LIKE '%{"field":"status","old":"pending","new":"active"}%'
           OR e.body LIKE '%{"field":"status","old":"closed","new":"active"}%'))
WHERE status <> 'pending';
