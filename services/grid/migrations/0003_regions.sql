-- The division tree under each tenant: province 2, city 4, county 6,
-- street/township 9, community/village 12 digits; a region's ancestors are
-- its code's prefixes.

CREATE TABLE regions (
    tenant       TEXT NOT NULL,
    code         TEXT NOT NULL,
    name         TEXT NOT NULL,
    -- province | city | county | street | community
    level        TEXT NOT NULL,
    parent_code  TEXT,
    PRIMARY KEY (tenant, code)
);
