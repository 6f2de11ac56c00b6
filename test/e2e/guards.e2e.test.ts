// The guards e2e scenarios (test/e2e/suites/guards.ts) on a LevelDB store.
import { guardsSuite } from './suites/guards.ts';

guardsSuite('level');
