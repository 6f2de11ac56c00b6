/**
 * Validation of a tree specification before anything starts: a row of small checks, each throwing one
 * ETHHOOK_ERR_INVALID_SPEC error that names the offending path and field.
 */
import { EthhookError } from '../runtime/errors.ts';
import type { ChildSpec, SupervisorSpec } from '../runtime/types.ts';

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.:-]*$/;
const STRATEGIES = ['one-for-one', 'one-for-all', 'rest-for-one'];
const RESTART_TYPES = ['permanent', 'transient', 'temporary'];
const OVERFLOWS = ['backpressure', 'drop-oldest', 'drop-newest'];

function invalid(path: string, field: string, what: unknown): never {
  throw new EthhookError('ETHHOOK_ERR_INVALID_SPEC', `invalid ${field} at ${path}: ${JSON.stringify(what)}`, { actor: path, field });
}

function checkName(path: string, name: unknown): void {
  if (typeof name !== 'string' || !NAME.test(name)) invalid(path, 'name', name);
}

function checkPositiveInt(path: string, field: string, v: unknown, allowZero = false): void {
  if (v === undefined) return;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < (allowZero ? 0 : 1)) invalid(path, field, v);
}

function checkChild(parentPath: string, spec: ChildSpec): void {
  checkName(parentPath, spec.name);
  const path = parentPath === '/' ? `/${spec.name}` : `${parentPath}/${spec.name}`;
  if (spec.restart !== undefined && !RESTART_TYPES.includes(spec.restart)) invalid(path, 'restart', spec.restart);
  checkPositiveInt(path, 'shutdownTimeoutMs', spec.shutdownTimeoutMs);
  if (spec.kind === 'supervisor') return checkSupervisor(path, spec);
  if (spec.kind !== 'worker') invalid(path, 'kind', (spec as { kind: unknown }).kind);
  const placed = spec.placement !== undefined && spec.placement.mode !== 'local';
  if (!placed && typeof spec.behaviour !== 'function') invalid(path, 'behaviour', typeof spec.behaviour);
  checkPositiveInt(path, 'mailbox.capacity', spec.mailbox?.capacity);
  checkPositiveInt(path, 'mailbox.throughput', spec.mailbox?.throughput);
  if (spec.mailbox?.overflow !== undefined && !OVERFLOWS.includes(spec.mailbox.overflow))
    invalid(path, 'mailbox.overflow', spec.mailbox.overflow);
  checkPositiveInt(path, 'maxConsecutivePanics', spec.maxConsecutivePanics);
  const p = spec.placement;
  if (p !== undefined && p.mode !== 'local' && (typeof p.module !== 'string' || typeof p.exportName !== 'string'))
    invalid(path, 'placement', p);
}

export function checkSupervisor(path: string, spec: SupervisorSpec): void {
  if (!STRATEGIES.includes(spec.strategy)) invalid(path, 'strategy', spec.strategy);
  checkPositiveInt(path, 'intensity.maxRestarts', spec.intensity?.maxRestarts, true);
  checkPositiveInt(path, 'intensity.withinMs', spec.intensity?.withinMs);
  const b = spec.backoff;
  if (b) {
    if (b.minMs !== undefined && !(b.minMs >= 0)) invalid(path, 'backoff.minMs', b.minMs);
    if (b.maxMs !== undefined && !(b.maxMs >= (b.minMs ?? 0))) invalid(path, 'backoff.maxMs', b.maxMs);
    if (b.factor !== undefined && !(b.factor >= 1)) invalid(path, 'backoff.factor', b.factor);
    if (b.jitter !== undefined && !(b.jitter >= 0 && b.jitter <= 1)) invalid(path, 'backoff.jitter', b.jitter);
  }
  const seen = new Set<string>();
  for (const child of spec.children) {
    if (seen.has(child.name)) invalid(path, 'children (duplicate name)', child.name);
    seen.add(child.name);
    checkChild(path, child);
  }
}
