-- How many times in a row a job's worker was lost (its lease ran out, or its
-- process was found gone) without a page stored in between. Every stored page
-- sets it back to 0; the attempt cap (--max-attempts) counts these losses, so
-- a job that moves forward between crashes is never given up on.
ALTER TABLE jobs ADD COLUMN lost_attempts INTEGER NOT NULL DEFAULT 0;
