-- A cluster of interchangeable instances on one schema (src/cluster/): who is there, and who holds what.
-- Every time is the database's clock, so the instances' clocks never have to agree.

-- One row per running instance, written at every heartbeat; a row silent for 10 minutes is deleted.
CREATE TABLE cluster_instances (
  id text PRIMARY KEY,                -- node.id
  version text NOT NULL,              -- the ethhook version it runs
  started_at timestamptz NOT NULL,
  heartbeat_at timestamptz NOT NULL,
  info json NOT NULL                  -- { leases: [name], heights: { chainId: height } } at the last heartbeat
);

-- Leases: `chain:<chainId>` (the instance that ingests the chain) and `governance` (the instance that
-- applies governance messages). A lease is held while expires_at is ahead; each new holder gets the
-- next epoch, and writes fenced with an older epoch fail (src/store/kv.ts, KvFence).
CREATE TABLE cluster_leases (
  name text PRIMARY KEY,
  holder text,                        -- NULL once released
  epoch bigint NOT NULL,
  expires_at timestamptz NOT NULL,
  released_by text,                   -- the instance that released it (on an operator's request) ...
  released_until timestamptz          -- ... may not take it back before this
);
