-- A job's page events are numbered 1, 2, 3... in the order they were stored:
-- `job_seq`, which the API and `inspect` show as the event's `seq` and which
-- `after` counts. `seq` stays one sequence for the whole database (the row's
-- id: the order the purge and the exports walk the table in), so a job's
-- first event rarely had seq 1, and the gaps between a job's numbers told its
-- organization how many events other organizations' jobs stored meanwhile.
-- Added beside `seq`, not in its place: a binary of version 6 still running
-- on the file while another migrates it goes on reading and deleting by
-- `seq` correctly, and the trigger numbers the events it stores.
ALTER TABLE page_events ADD COLUMN job_seq INTEGER;
UPDATE page_events SET job_seq = numbered.n
  FROM (SELECT seq AS event_seq, ROW_NUMBER() OVER (PARTITION BY job_id ORDER BY seq) AS n
        FROM page_events) AS numbered
  WHERE page_events.seq = numbered.event_seq;
DROP INDEX page_events_job;
CREATE UNIQUE INDEX page_events_job ON page_events (job_id, job_seq);
CREATE TRIGGER page_events_job_seq AFTER INSERT ON page_events WHEN NEW.job_seq IS NULL
BEGIN
  UPDATE page_events
     SET job_seq = (SELECT IFNULL(MAX(job_seq), 0) + 1 FROM page_events WHERE job_id = NEW.job_id)
   WHERE seq = NEW.seq;
END;
