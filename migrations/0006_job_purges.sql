-- Deleted jobs whose page events and result items are still being removed.
-- Deleting a job (the API, retention) removes its row and, when it has more
-- rows than one transaction removes, lists its id here in the same short
-- transaction: the job is gone from every read at once. Its rows are then
-- removed a batch per transaction (JobStore::purge_deleted, run by the
-- maintenance thread of every serve and worker process, at start too), so
-- other writers wait for one batch at most, and the entry goes with the last
-- of them. No new job takes an id listed here. Row order is queue order.
CREATE TABLE job_purges (
  job_id TEXT PRIMARY KEY
);
