-- Per-endpoint delivery limits shared by every instance on this schema (src/store/postgres/delivery-limits.ts).

-- One token bucket per rate-limited endpoint: instances take small slices of tokens from it. Times are
-- the database clock, so the instances' clocks never meet.
CREATE TABLE delivery_rate_buckets (
  endpoint_id text PRIMARY KEY,
  rate_per_sec double precision NOT NULL,
  burst double precision NOT NULL,
  tokens double precision NOT NULL,   -- after the last take
  granted integer NOT NULL,           -- what the last take handed out
  refilled_at timestamptz NOT NULL    -- when `tokens` was last brought up to date
);

-- Endpoints whose circuit breaker an instance opened: every instance treats them as open.
CREATE TABLE delivery_breakers (
  endpoint_id text PRIMARY KEY,
  open_until timestamptz NOT NULL,
  cooldown_ms bigint NOT NULL,
  opened_by text NOT NULL
);
