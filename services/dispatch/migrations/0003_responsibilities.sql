-- The units directory gains its duty phone and the accounts that may act
-- for a unit; the category -> unit table becomes the responsibility list
-- (category × region → lead and co-handling units, valid for a span of days).

ALTER TABLE units
    ADD COLUMN duty_phone  TEXT NOT NULL DEFAULT '',
    -- JWT `sub`s allowed to act for the unit; empty = anyone whose token
    -- names the unit.
    ADD COLUMN members     TEXT[] NOT NULL DEFAULT '{}',
    ADD COLUMN updated_at  TIMESTAMPTZ NOT NULL DEFAULT now();

CREATE TABLE responsibilities (
    id            BIGSERIAL PRIMARY KEY,
    tenant        TEXT NOT NULL,
    -- category code or group prefix
    category      TEXT NOT NULL,
    -- division code prefix; the tenant's code covers the whole tenant
    region_code   TEXT NOT NULL,
    lead_unit_id  TEXT NOT NULL,
    co_unit_ids   TEXT[] NOT NULL DEFAULT '{}',
    valid_from    DATE NOT NULL,
    valid_to      DATE,
    note          TEXT NOT NULL DEFAULT '',
    FOREIGN KEY (tenant, lead_unit_id) REFERENCES units (tenant, id)
);
CREATE INDEX responsibilities_tenant ON responsibilities (tenant, category);

INSERT INTO responsibilities (tenant, category, region_code, lead_unit_id, valid_from)
    SELECT tenant, category, tenant, unit_id, DATE '2000-01-01' FROM category_routes;
DROP TABLE category_routes;
