-- The node's tables, in the configured schema (the migration runner sets search_path to it).

-- Endpoints, subscriptions, cursors, match records, deferred jobs, attempt pages, governance state:
-- one row per key of a space (src/store/kv.ts).
CREATE TABLE kv (
  space text NOT NULL,
  key text COLLATE "C" NOT NULL,      -- bytewise order, as LevelDB
  value json NOT NULL,
  PRIMARY KEY (space, key)
);

CREATE TABLE outbox_jobs (
  id text PRIMARY KEY,                -- the webhook-id
  endpoint_id text NOT NULL,
  due_at bigint NOT NULL,             -- nextAttemptAt, ms since the epoch
  held_by text,                       -- the job this one waits for (follows); NULL once it may be due
  claimed_by text,                    -- the instance that has it in hand, until claim_until
  claim_until bigint NOT NULL DEFAULT 0,
  job json NOT NULL                   -- the Job; json (not jsonb) keeps its text, so the body bytes never change
);
CREATE INDEX outbox_jobs_due ON outbox_jobs (due_at, id) WHERE held_by IS NULL;
CREATE INDEX outbox_jobs_held_by ON outbox_jobs (held_by) WHERE held_by IS NOT NULL;
CREATE INDEX outbox_jobs_endpoint ON outbox_jobs (endpoint_id);

CREATE TABLE outbox_dead (
  id text PRIMARY KEY,
  endpoint_id text NOT NULL,
  dead_at bigint NOT NULL,
  superseded_by text,
  letter json NOT NULL                -- the DeadLetter
);
CREATE INDEX outbox_dead_by_time ON outbox_dead (dead_at, id);
CREATE INDEX outbox_dead_by_endpoint ON outbox_dead (endpoint_id, dead_at, id);
