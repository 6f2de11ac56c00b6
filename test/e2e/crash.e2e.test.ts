// The crash e2e scenarios (test/e2e/suites/crash.ts) on a LevelDB store.
import { crashSuite } from './suites/crash.ts';

crashSuite('level');
