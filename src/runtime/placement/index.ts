/**
 * Placement: running an actor's behaviour in a child process (`forked`) or a worker thread (`threaded`)
 * through comedy, while its ref, mailbox and supervision stay in this process. See placed-behaviour.ts
 * for the contract and README.md for what comedy 2.1.7 does and what we do around it.
 */
export { createPlacedBehaviour, type PlacedBehaviour, type PlacedSpec, type PlacementOptions } from './placed-behaviour.ts';
