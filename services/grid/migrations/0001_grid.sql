-- Grid owns the tenant's grids: code, kind, community and geometry
-- (GeoJSON text; every replica keeps its own in-memory index of them).

CREATE TABLE grids (
    tenant          TEXT NOT NULL,
    code            TEXT NOT NULL,
    name            TEXT NOT NULL,
    -- basic | micro | dedicated | professional
    kind            TEXT NOT NULL,
    community_code  TEXT NOT NULL,
    -- GeoJSON Polygon or MultiPolygon, WGS-84
    geometry        TEXT NOT NULL,
    version         INTEGER NOT NULL DEFAULT 1,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, code)
);
CREATE INDEX grids_community ON grids (tenant, community_code);
