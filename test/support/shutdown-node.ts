// A small node for the SIGTERM test: a nested tree whose actors print when they start and stop.
// argv[2] = ms each postStop takes. Prints "ready" once started; exits with the shutdown's code.
import type { WorkerSpec } from '../../src/runtime/types.ts';
import { createLogger } from '../../src/runtime/log.ts';
import { startSystem } from '../../src/supervision/index.ts';

const stopMs = Number(process.argv[2] ?? '0');
const say = (line: string) => process.stdout.write(`${line}\n`);
const worker = (name: string): WorkerSpec => ({
  kind: 'worker',
  name,
  behaviour: () => ({
    preStart: () => {
      say(`start ${name}`);
    },
    receive: () => undefined,
    postStop: () =>
      new Promise<void>((r) =>
        setTimeout(() => {
          say(`stop ${name}`);
          r();
        }, stopMs),
      ),
  }),
});

const system = await startSystem(
  {
    kind: 'supervisor',
    name: 'root',
    strategy: 'one-for-one',
    children: [
      {
        kind: 'supervisor',
        name: 'pipeline',
        strategy: 'rest-for-one',
        children: [worker('deliverer'), worker('matcher'), worker('listener')],
      },
      worker('governance'),
      worker('admin'),
    ],
  },
  { logger: createLogger({ level: 'warn', destination: process.stderr }), shutdownDeadlineMs: 2000 },
);
system.installSignalHandlers(2000);
// Nothing else holds the event loop open in this tiny node (a real one has its admin server).
const keepAlive = setInterval(() => undefined, 60_000);
say('ready');
const exit = await system.exited;
clearInterval(keepAlive);
process.exit(exit.code);
