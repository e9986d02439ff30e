-- Everything GET .../progress reads of a job, in an index keyed by job id:
-- the progress read finds the row in this one B-tree and never visits the
-- table (a leaf page fewer per request). Written to with the counters.
CREATE INDEX jobs_progress ON jobs (
  job_id, org_id, status, url, max_items, follow_pagination, max_pages, depth,
  created_at, started_at, completed_at, completion_reason, error_message,
  current_page, pagination_complete, listing_pages_scraped, listing_pages_failed,
  detail_pages_discovered, detail_pages_scraped, detail_pages_failed, items_found,
  stopped_percentage
);
