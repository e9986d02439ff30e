-- The schema that all migrations in migrations/ produce, in one file.
-- A test (tests/unit/test_store_schema.cpp) keeps it equal to the migrations.

-- Organizations own API keys and jobs.
CREATE TABLE organizations (
  org_id     INTEGER PRIMARY KEY,
  name       TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL
);

-- Only the SHA-256 of a key is stored (hex); key_id tells keys apart.
CREATE TABLE api_keys (
  key_id     TEXT PRIMARY KEY,
  org_id     INTEGER NOT NULL REFERENCES organizations(org_id),
  key_hash   TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL,
  revoked_at INTEGER
);

-- One row per job. Times are integer microseconds since the epoch, UTC.
-- Counters live here so that progress is one row read.
CREATE TABLE jobs (
  job_id                  TEXT PRIMARY KEY,
  org_id                  INTEGER NOT NULL REFERENCES organizations(org_id),
  status                  TEXT NOT NULL
    CHECK (status IN ('pending', 'processing', 'completed', 'failed', 'cancelled')),
  url                     TEXT NOT NULL,
  timeout_s               INTEGER NOT NULL,
  max_items               INTEGER NOT NULL,
  follow_pagination       INTEGER NOT NULL,
  max_pages               INTEGER NOT NULL,
  depth                   INTEGER NOT NULL,
  selectors               TEXT NOT NULL,  -- JSON object, normalized
  created_at              INTEGER NOT NULL,
  started_at              INTEGER,
  completed_at            INTEGER,
  completion_reason       TEXT
    CHECK (completion_reason IN ('done', 'timeout', 'error', 'cancelled')),
  error_message           TEXT,
  current_page            INTEGER NOT NULL DEFAULT 0,
  pagination_complete     INTEGER NOT NULL DEFAULT 0,
  listing_pages_scraped   INTEGER NOT NULL DEFAULT 0,
  listing_pages_failed    INTEGER NOT NULL DEFAULT 0,
  detail_pages_discovered INTEGER NOT NULL DEFAULT 0,
  detail_pages_scraped    INTEGER NOT NULL DEFAULT 0,
  detail_pages_failed     INTEGER NOT NULL DEFAULT 0,
  items_found             INTEGER NOT NULL DEFAULT 0,
  stopped_percentage      REAL,
  attempts                INTEGER NOT NULL DEFAULT 0,
  claim_token             TEXT,     -- set while a worker holds the job
  claimed_by              TEXT,     -- that worker's process (store/holder.hpp)
  lease_expires_at        INTEGER
  -- Worker losses in a row without a page stored. Added by migration 0003's
  -- ALTER TABLE, which writes it after the last column this way.
  , lost_attempts INTEGER NOT NULL DEFAULT 0);

CREATE INDEX jobs_org_created ON jobs (org_id, created_at DESC);
CREATE INDEX jobs_org_status_created ON jobs (org_id, status, created_at DESC);
CREATE INDEX jobs_status_created ON jobs (status, created_at);
CREATE INDEX jobs_lease ON jobs (lease_expires_at) WHERE status = 'processing';
-- Everything GET .../progress reads of a job: that read never visits the table.
CREATE INDEX jobs_progress ON jobs (
  job_id, org_id, status, url, max_items, follow_pagination, max_pages, depth,
  created_at, started_at, completed_at, completion_reason, error_message,
  current_page, pagination_complete, listing_pages_scraped, listing_pages_failed,
  detail_pages_discovered, detail_pages_scraped, detail_pages_failed, items_found,
  stopped_percentage
);

-- Append-only page events. A listing page is stored once per job and page
-- number, a detail page once per job and item. `seq` orders the whole table;
-- `job_seq` numbers a job's events 1, 2, 3... in the order they were stored
-- (the API's and inspect's `seq`).
CREATE TABLE page_events (
  seq         INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id      TEXT NOT NULL REFERENCES jobs(job_id) ON DELETE CASCADE,
  kind        TEXT NOT NULL CHECK (kind IN ('listing', 'detail')),
  page_number INTEGER NOT NULL,
  item_index  INTEGER,  -- detail pages: the item they belong to
  url         TEXT NOT NULL,
  http_status INTEGER,
  outcome     TEXT NOT NULL CHECK (outcome IN ('ok', 'failed')),
  items_found INTEGER NOT NULL DEFAULT 0,
  detail_links INTEGER NOT NULL DEFAULT 0,  -- listing pages: detail pages discovered
  next_url    TEXT,  -- listing pages: where the next listing page is
  error       TEXT,
  started_at  INTEGER NOT NULL,
  finished_at INTEGER NOT NULL
  -- Listing pages: where a redirect took the page, when not to url (NULL
  -- otherwise). Added by migration 0005's ALTER TABLE, written this way;
  -- job_seq by migration 0007's (set by the store, or by the trigger below
  -- for a row an older binary inserts without it).
  , final_url TEXT, job_seq INTEGER);

CREATE UNIQUE INDEX page_events_job ON page_events (job_id, job_seq);
CREATE TRIGGER page_events_job_seq AFTER INSERT ON page_events WHEN NEW.job_seq IS NULL
BEGIN
  UPDATE page_events
     SET job_seq = (SELECT IFNULL(MAX(job_seq), 0) + 1 FROM page_events WHERE job_id = NEW.job_id)
   WHERE seq = NEW.seq;
END;
CREATE UNIQUE INDEX page_events_listing_once ON page_events (job_id, page_number)
  WHERE kind = 'listing';
CREATE UNIQUE INDEX page_events_detail_once ON page_events (job_id, item_index)
  WHERE kind = 'detail';

-- Extracted items; detail is merged in when the item's detail page is stored.
CREATE TABLE result_items (
  job_id      TEXT NOT NULL REFERENCES jobs(job_id) ON DELETE CASCADE,
  item_index  INTEGER NOT NULL,
  page_number INTEGER NOT NULL,
  page_url    TEXT NOT NULL,
  fields      TEXT NOT NULL,  -- JSON object in selector order
  detail_url  TEXT,
  detail      TEXT,           -- JSON object once the detail page was scraped
  PRIMARY KEY (job_id, item_index)
) WITHOUT ROWID;

-- Deleted jobs whose page events and result items are still being removed, a
-- batch per transaction (migration 0006). Their rows name no job meanwhile:
-- the job's own row went first, so that every read misses it at once.
CREATE TABLE job_purges (
  job_id TEXT PRIMARY KEY
);
