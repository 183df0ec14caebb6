-- When the provider was first seen to have acknowledged an incident (Covalence's
-- `acknowledgedStatus` turning `Acknowledged`, which carries no time of its own): the
-- provider's time to acknowledge, in reports. Mirroring keeps it from here on; incidents whose
-- acknowledgement was mirrored in before get the time of the war-room entry that recorded it.
-- (Microseconds since 1970-01-01 UTC, as an incident's other times.)
ALTER TABLE incidents ADD COLUMN provider_acknowledged INTEGER;
UPDATE incidents
SET provider_acknowledged = (
    SELECT unixepoch(MIN(e.created)) * 1000000 + CAST(substr(MIN(e.created), 21, 6) AS INTEGER)
    FROM incident_entries e
    WHERE e.incident_id = incidents.id AND e.kind = 'sync-in'
      AND e.body LIKE '%"Covalence: acknowledgedStatus % → Acknowledged"%')
WHERE integration = 'covalence-security-providers';
