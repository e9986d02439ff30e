# The ordered list of migrations embedded into the binary. Append only; a
# migration that has landed is never edited.
set(SCRAPEKEEP_MIGRATIONS
  0001_initial.sql
  0002_jobs_progress_index.sql
  0003_jobs_lost_attempts.sql
  0004_api_keys_no_prefix.sql
  0005_page_events_final_url.sql
  0006_job_purges.sql
  0007_page_events_seq_per_job.sql
)
