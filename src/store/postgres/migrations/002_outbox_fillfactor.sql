-- Room in outbox_jobs' pages for a new version of each row: a claim (claimed_by, claim_until, neither
-- indexed) then stays on the row's page as a heap-only tuple, with no new entry in any index, so the
-- claims walking the due index do not step over the entries earlier claims left. Jobs are inserted and
-- claimed in due order, so the rows of a page are claimed together: half of each page is kept free.
-- Pages written before this migration keep their layout until rewritten.
ALTER TABLE outbox_jobs SET (fillfactor = 50);
