// The delivery e2e scenarios (test/e2e/suites/delivery.ts) on a LevelDB store.
import { deliverySuite } from './suites/delivery.ts';

deliverySuite('level');
