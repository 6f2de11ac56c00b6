import { defineConfig } from 'vitest/config';
import { SlowFirstSequencer } from './test/support/sequencer.ts';

/** ERR_IPC_CHANNEL_CLOSED thrown from comedy's forked-actor.js (see onUnhandledError below). */
function isComedyChannelClosed(error: { code?: unknown; stack?: string }): boolean {
  return error.code === 'ERR_IPC_CHANNEL_CLOSED' && /comedy[\\/]lib[\\/]forked-actor\.js/.test(error.stack ?? '');
}

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    // One PostgreSQL for the run (~2 s); each file that uses it takes a schema of its own.
    globalSetup: ['test/support/postgres.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Three files at once on CI's two cores: integration and e2e files spend most of their time waiting
    // on the processes they start (anvil, nodes, children) and on sockets, so a third keeps the cores busy
    // (quiet machine: 224 s with two, 141 s with three and shared modules below).
    maxWorkers: 3,
    // The files a worker runs share its module cache instead of each loading src/ again (the import time
    // fell from ~40 s to ~10 s). Test files therefore leave no global state behind: each makes its own
    // registries, stores, ports and processes, and stops what it started.
    isolate: false,
    // The known-slow files start first, so that none of them starts last and sets the run's tail alone.
    sequence: { sequencer: SlowFirstSequencer },
    // comedy answers a forked child's request to its parent over the child's IPC channel; when the child
    // was killed meanwhile (the placement tests' kill -9), that answer, and the error answer comedy sends
    // after it, reject inside comedy with ERR_IPC_CHANNEL_CLOSED, and nothing of comedy's catches them.
    // The tests then check what the node does about the dead child; this one rejection is not the node's.
    onUnhandledError: (error) => !isComedyChannelClosed(error),
  },
});
