-- A household's residents, sealed together as one JSON document.
ALTER TABLE households ADD COLUMN residents_enc TEXT;
