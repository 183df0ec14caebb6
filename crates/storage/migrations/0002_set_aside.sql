-- Provider records a fetch could not read, set aside so they do not block the others.
ALTER TABLE instance_health ADD COLUMN set_aside TEXT NOT NULL DEFAULT '[]';
