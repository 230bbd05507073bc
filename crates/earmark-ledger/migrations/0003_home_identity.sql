-- The home this ledger belongs to: the id in the home's `home.id` file. A
-- ledger without it (lost, emptied, or another home's) is refused rather
-- than taken for a new one.
CREATE TABLE home_identity (
    id TEXT NOT NULL PRIMARY KEY
);
