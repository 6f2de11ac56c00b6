/**
 * The kernel's entry point: validate a tree specification, build it under an ActorSystem, start it.
 * `startSystem(spec, options)` does it all; `startTree(system, spec)` starts a tree under a system made
 * beforehand, for actors (like Admin) whose behaviour needs the system itself.
 */
import { ActorSystem, type SystemOptions } from '../runtime/system.ts';
import type { SupervisorSpec } from '../runtime/types.ts';
import { Supervisor } from './supervisor.ts';
import { checkSupervisor } from './validate.ts';

export { RestartBackoff, DEFAULT_BACKOFF } from './backoff.ts';
export { RestartIntensity } from './intensity.ts';
export { childrenToRestart } from './strategy.ts';
export { Supervisor, DEFAULT_INTENSITY } from './supervisor.ts';

export async function startTree(system: ActorSystem, root: SupervisorSpec): Promise<ActorSystem> {
  checkSupervisor('/', root);
  const tree = new Supervisor(root, null, {
    cellEnv: system.cellEnv,
    defaults: system.defaults,
    logger: system.logger,
    register: (node) => system.register(node),
  });
  await system.startRoot(tree);
  return system;
}

export function startSystem(root: SupervisorSpec, options: SystemOptions = {}): Promise<ActorSystem> {
  return startTree(new ActorSystem(options), root);
}
