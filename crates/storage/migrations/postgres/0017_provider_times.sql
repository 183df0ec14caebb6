-- The provider's own times beyond its creation (see docs/reports.md): when it last changed the
-- alert, and when it resolved it. Fetches and mirroring keep them from here on; incidents
-- fetched before are filled from their raw records (FES: last_updated_time, and resolution_time
-- or the last update of an ARO Resolved or Dismissed; Covalence: lastAlertedTime; Symantec:
-- UpdateTimestampGMT). A value that is not a time, or a record that is not JSON, is left empty.
ALTER TABLE incidents ADD COLUMN provider_updated TEXT COLLATE "C";
ALTER TABLE incidents ADD COLUMN provider_resolved TEXT COLLATE "C";
CREATE FUNCTION wf_raw(t text) RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN t::jsonb;
EXCEPTION WHEN others THEN
    RETURN NULL;
END $$;
CREATE FUNCTION wf_time(t text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN to_char(left(t, 19)::timestamp, 'YYYY-MM-DD"T"HH24:MI:SS".000000Z"');
EXCEPTION WHEN others THEN
    RETURN NULL;
END $$;
UPDATE incidents
SET provider_updated = wf_time(wf_raw(raw_json) ->> 'last_updated_time')
WHERE integration = 'covalence-managed-security';
UPDATE incidents
SET provider_resolved = COALESCE(wf_time(wf_raw(raw_json) ->> 'resolution_time'), provider_updated)
WHERE integration = 'covalence-managed-security'
  AND wf_raw(raw_json) ->> 'resolution' IN ('Resolved', 'Dismissed');
UPDATE incidents
SET provider_updated = to_char(to_timestamp((wf_raw(raw_json) ->> 'lastAlertedTime')::bigint) AT TIME ZONE 'UTC',
                               'YYYY-MM-DD"T"HH24:MI:SS".000000Z"')
WHERE integration = 'covalence-security-providers'
  AND jsonb_typeof(wf_raw(raw_json) -> 'lastAlertedTime') = 'number'
  AND (wf_raw(raw_json) ->> 'lastAlertedTime') ~ '^[0-9]{1,11}$';
UPDATE incidents
SET provider_updated = wf_time(replace(wf_raw(raw_json) ->> 'UpdateTimestampGMT', 'T', ' '))
WHERE integration = 'symantec-mss';
DROP FUNCTION wf_time(text);
DROP FUNCTION wf_raw(text);
