-- The live streams across a cluster (src/store/postgres/stream-relay.ts): the instance that ingests a
-- chain writes the log events it publishes to its own stream clients here, one row per batch, and
-- NOTIFYs the others, which read the rows after the last id they saw and publish them to theirs.
-- Writers take one transaction-level advisory lock before inserting, so ids commit in increasing order
-- and a reader that has seen id N never finds a smaller id later. Rows older than the relay's retention
-- (5 minutes by default) are pruned.
CREATE TABLE stream_events (
  id bigserial PRIMARY KEY,
  origin text NOT NULL,                                  -- node.id of the writer (it publishes its own locally)
  written_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  events json NOT NULL                                   -- [LogStreamEvent] (src/streams/events.ts), in publish order
);
CREATE INDEX stream_events_written_at ON stream_events (written_at);
