// The reorg e2e scenarios (test/e2e/suites/reorg.ts) on a PostgreSQL store: the run's test server, a schema
// of this file's own. A file beside the LevelDB one, so vitest runs the two side by side.
import { reorgSuite } from './suites/reorg.ts';

reorgSuite('postgres');
