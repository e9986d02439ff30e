-- A job's page events are numbered 1, 2, 3... in the order they were stored:
-- `seq` in the API and in `inspect`, and what `after` counts. It was one
-- sequence for the whole database, so a job's first event rarely had seq 1,
-- and the gaps between a job's numbers told its organization how many events
-- other organizations' jobs stored meanwhile. The database-wide number stays
-- as the row's id (the order the purge and the exports walk the table in).
DROP INDEX page_events_job;
ALTER TABLE page_events RENAME COLUMN seq TO id;
ALTER TABLE page_events ADD COLUMN seq INTEGER;
UPDATE page_events SET seq = numbered.n
  FROM (SELECT id AS event_id, ROW_NUMBER() OVER (PARTITION BY job_id ORDER BY id) AS n
        FROM page_events) AS numbered
  WHERE page_events.id = numbered.event_id;
CREATE UNIQUE INDEX page_events_job ON page_events (job_id, seq);
