/**
 * The node's supervision tree, built from the configuration (docs/architecture.md, "The tree"):
 *
 *   root (one-for-one)
 *   ├── pipeline (rest-for-one; start order = data flow reversed)
 *   │   ├── deliverer-store     (only when the deliverer is placed forked/threaded: its outbox and endpoints)
 *   │   ├── deliverer
 *   │   ├── matcher
 *   │   ├── chains (one-for-one): chain-listener:<chainId> ...
 *   │   └── backfill            (history backfills and replays: src/actors/backfill/)
 *   ├── governance-stream       (when the node follows a governance stream: `governance.url`, or the demo's)
 *   └── admin
 *
 * rest-for-one on the pipeline: if the matcher restarts, the listeners after it restart too (they hold
 * blocks in flight to it), and so does the backfill (it reads through the listeners and writes through the
 * matcher); a listener's failure restarts only that listener; the backfill's restarts nothing else; a
 * restart of the deliverer-store restarts the deliverer it serves. Every actor takes the
 * runtime defaults and the per-actor overrides of `runtime.actors.<name>` (mailbox, placement, shutdown).
 */
import type { CellDefaults } from './runtime/cell.ts';
import { EthhookError } from './runtime/errors.ts';
import type { Behaviour, ChildSpec, SupervisorSpec, WorkerSpec } from './runtime/types.ts';
import type { NodeConfig } from './config/schema.ts';

/** Where each actor of the tree lives: the one place its path is written. */
export const ACTOR_PATHS = {
  matcher: '/pipeline/matcher',
  deliverer: '/pipeline/deliverer',
  delivererStore: '/pipeline/deliverer-store',
  backfill: '/pipeline/backfill',
  governanceStream: '/governance-stream',
  admin: '/admin',
} as const;

/** The name of a chain's listener under `chains`, and its path. */
export const chainListenerName = (chainId: number): string => `chain-listener:${chainId}`;
export const chainListenerPath = (chainId: number): string => `/pipeline/chains/${chainListenerName(chainId)}`;

export type AnyBehaviourFactory = () => Behaviour<unknown>;

/** The behaviours a node runs; absent ones are left out of the tree. */
export interface NodeBehaviours {
  admin: AnyBehaviourFactory;
  matcher?: AnyBehaviourFactory;
  deliverer?: AnyBehaviourFactory;
  /** Serves the outbox and endpoints to a deliverer placed in a child (src/actors/deliverer/store-port.ts). */
  delivererStore?: AnyBehaviourFactory;
  governance?: AnyBehaviourFactory;
  /** Runs the backfill requests (src/actors/backfill/). */
  backfill?: AnyBehaviourFactory;
  /** One per followed chain, keyed by actor name (`chain-listener:31337`). */
  chainListeners: ReadonlyMap<string, AnyBehaviourFactory>;
  /** Actors that can run in a child process or thread: the module and factory export the child builds. */
  placeable?: Readonly<Record<string, { module: string; exportName: string; args?: unknown }>>;
}

/** What every actor takes unless `runtime.actors.<name>` overrides it: the actor system's defaults. */
export function cellDefaults(runtime: NodeConfig['runtime']): CellDefaults {
  return { ...runtime.mailbox, maxConsecutivePanics: runtime.maxConsecutivePanics, shutdownTimeoutMs: runtime.shutdownTimeoutMs };
}

export function buildTree(config: NodeConfig, behaviours: NodeBehaviours): SupervisorSpec {
  const rt = config.runtime;
  const { intensity, backoff } = rt.supervision;

  const worker = (name: string, behaviour: AnyBehaviourFactory, extra: Partial<WorkerSpec> = {}): WorkerSpec => {
    const override = rt.actors[name];
    const mode = override?.placement ?? 'local';
    const spec: WorkerSpec = {
      kind: 'worker',
      name,
      behaviour,
      mailbox: { ...rt.mailbox, ...override?.mailbox },
      shutdownTimeoutMs: override?.shutdownTimeoutMs ?? rt.shutdownTimeoutMs,
      maxConsecutivePanics: rt.maxConsecutivePanics,
      ...extra,
    };
    if (mode !== 'local') {
      const placed = behaviours.placeable?.[name];
      if (!placed) {
        throw new EthhookError('ETHHOOK_ERR_INVALID_SPEC', `actor ${name} cannot be placed ${mode}: it runs in the node's process only`, {
          actor: name,
          field: `runtime.actors.${name}.placement`,
        });
      }
      spec.placement = { mode, ...placed };
    }
    return spec;
  };
  const supervisor = (name: string, strategy: SupervisorSpec['strategy'], children: ChildSpec[]): SupervisorSpec => ({
    kind: 'supervisor',
    name,
    strategy,
    intensity,
    backoff,
    children,
  });

  const chains = supervisor(
    'chains',
    'one-for-one',
    [...behaviours.chainListeners].map(([name, b]) => worker(name, b)),
  );
  const pipeline: ChildSpec[] = [];
  if (behaviours.delivererStore) pipeline.push(worker('deliverer-store', behaviours.delivererStore));
  if (behaviours.deliverer) pipeline.push(worker('deliverer', behaviours.deliverer));
  if (behaviours.matcher) pipeline.push(worker('matcher', behaviours.matcher));
  pipeline.push(chains);
  if (behaviours.backfill) pipeline.push(worker('backfill', behaviours.backfill));

  const top: ChildSpec[] = [supervisor('pipeline', 'rest-for-one', pipeline)];
  if (behaviours.governance) top.push(worker('governance-stream', behaviours.governance));
  top.push(worker('admin', behaviours.admin));
  return { ...supervisor('root', 'one-for-one', top) };
}
