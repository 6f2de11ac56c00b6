// The reorg e2e scenarios (test/e2e/suites/reorg.ts) on a LevelDB store.
import { reorgSuite } from './suites/reorg.ts';

reorgSuite('level');
