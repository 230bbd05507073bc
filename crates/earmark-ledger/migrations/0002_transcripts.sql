-- Works may be transcripts as well as recordings. A transcript has no
-- duration, rate or channels (0); it has a spoken word count.
ALTER TABLE works ADD COLUMN kind TEXT NOT NULL DEFAULT 'audio' CHECK (kind IN ('audio', 'transcript'));
ALTER TABLE works ADD COLUMN words INTEGER;
