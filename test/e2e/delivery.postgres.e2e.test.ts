// The delivery e2e scenarios (test/e2e/suites/delivery.ts) on a PostgreSQL store: the run's test server, a schema
// of this file's own. A file beside the LevelDB one, so vitest runs the two side by side.
import { deliverySuite } from './suites/delivery.ts';

deliverySuite('postgres');
