-- Every unit a ticket's work order involves (lead, co-handlers, summoned), as
-- dispatch last announced it (`ticket.units`), so the one lookup lists a unit
-- the tickets it works on, not only those it leads.
CREATE TABLE ticket_units (
    ticket_id  UUID NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    unit_id    TEXT NOT NULL,
    PRIMARY KEY (ticket_id, unit_id)
);
CREATE INDEX ticket_units_by_unit ON ticket_units (unit_id, ticket_id);

-- When that set was announced: a late event of an earlier step does not
-- bring an old set back.
ALTER TABLE tickets ADD COLUMN units_at TIMESTAMPTZ;
