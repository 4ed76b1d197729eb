-- The escalation level a ticket starts at: L2..L4 when a grid worker
-- whistled the matter up (吹哨); '' = L1 (the usual start).
ALTER TABLE tickets ADD COLUMN level TEXT NOT NULL DEFAULT '';
