/**
 * The kernel's entry point: validate a tree specification, build it under a new ActorSystem, start it.
 */
import { ActorSystem, type SystemOptions } from '../runtime/system.ts';
import type { SupervisorSpec } from '../runtime/types.ts';
import { Supervisor } from './supervisor.ts';
import { checkSupervisor } from './validate.ts';

export { RestartBackoff, DEFAULT_BACKOFF } from './backoff.ts';
export { RestartIntensity } from './intensity.ts';
export { childrenToRestart } from './strategy.ts';
export { Supervisor, DEFAULT_INTENSITY } from './supervisor.ts';

export async function startSystem(root: SupervisorSpec, options: SystemOptions = {}): Promise<ActorSystem> {
  checkSupervisor('/', root);
  const system = new ActorSystem(options);
  const tree = new Supervisor(root, null, {
    cellEnv: system.cellEnv,
    defaults: system.defaults,
    logger: system.logger,
    register: (node) => system.register(node),
  });
  await system.startRoot(tree);
  return system;
}
