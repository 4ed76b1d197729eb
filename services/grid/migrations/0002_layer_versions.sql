-- A counter per tenant, bumped in the transaction of every change to its
-- grids: each replica polls it and rebuilds its in-memory index when it moved.

CREATE TABLE layer_versions (
    tenant      TEXT PRIMARY KEY,
    version     BIGINT NOT NULL,
    changed_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO layer_versions (tenant, version) SELECT DISTINCT tenant, 1 FROM grids;
