-- Where a listing page was fetched from in the end, when a redirect took it
-- away from its url (NULL otherwise). A resumed job counts it as visited, as
-- the worker that stored the page did, so a later page linking to it is a loop,
-- not a page fetched and counted again.
ALTER TABLE page_events ADD COLUMN final_url TEXT;
