-- The provider's own times beyond its creation (see docs/reports.md): when it last changed the
-- alert, and when it resolved it. Fetches and mirroring keep them from here on; incidents
-- fetched before are filled from their raw records (FES: last_updated_time, and resolution_time
-- or the last update of an ARO Resolved or Dismissed; Covalence: lastAlertedTime; Symantec:
-- UpdateTimestampGMT). A value that is not a time is left empty.
ALTER TABLE incidents ADD COLUMN provider_updated TEXT;
ALTER TABLE incidents ADD COLUMN provider_resolved TEXT;
UPDATE incidents
SET provider_updated = strftime('%Y-%m-%dT%H:%M:%S.000000Z', json_extract(raw_json, '$.last_updated_time'))
WHERE integration = 'covalence-managed-security' AND json_valid(raw_json)
  AND json_type(raw_json, '$.last_updated_time') = 'text';
UPDATE incidents
SET provider_resolved = COALESCE(
    strftime('%Y-%m-%dT%H:%M:%S.000000Z', json_extract(raw_json, '$.resolution_time')),
    provider_updated)
WHERE integration = 'covalence-managed-security' AND json_valid(raw_json)
  AND json_extract(raw_json, '$.resolution') IN ('Resolved', 'Dismissed')
  AND (json_type(raw_json, '$.resolution_time') IS NULL OR json_type(raw_json, '$.resolution_time') IN ('text', 'null'));
UPDATE incidents
SET provider_updated = strftime('%Y-%m-%dT%H:%M:%S.000000Z', json_extract(raw_json, '$.lastAlertedTime'), 'unixepoch')
WHERE integration = 'covalence-security-providers' AND json_valid(raw_json)
  AND json_type(raw_json, '$.lastAlertedTime') = 'integer';
UPDATE incidents
SET provider_updated = strftime('%Y-%m-%dT%H:%M:%S.000000Z', json_extract(raw_json, '$.UpdateTimestampGMT'))
WHERE integration = 'symantec-mss' AND json_valid(raw_json)
  AND json_type(raw_json, '$.UpdateTimestampGMT') = 'text';
