-- Every row a verdict reads carries a MAC under a key derived from the
-- home's master key (see `integrity.rs`). Rows written before this step
-- get theirs once, when the step below is carried out.
ALTER TABLE recipients ADD COLUMN mac TEXT;
ALTER TABLE works ADD COLUMN mac TEXT;
ALTER TABLE copies ADD COLUMN mac TEXT;
-- A removed recipient who holds copies is retired, never deleted: their
-- copies must still name them.
ALTER TABLE recipients ADD COLUMN retired_at TEXT;
-- One-off steps the program carries out after a migration, under the key.
CREATE TABLE ledger_upgrade (
    step TEXT NOT NULL PRIMARY KEY
);
INSERT INTO ledger_upgrade (step) VALUES ('row-macs');
