-- Each stream-events row names its batch (a UUID the writer draws once per batch, src/store/postgres/
-- stream-relay.ts). The pool runs a transaction again when its COMMIT was cut off or answered with an
-- error after it had landed; the second insert of the same batch then finds the first and writes
-- nothing, so readers never publish a batch twice.
ALTER TABLE stream_events ADD COLUMN batch uuid;
CREATE UNIQUE INDEX stream_events_batch ON stream_events (batch);
