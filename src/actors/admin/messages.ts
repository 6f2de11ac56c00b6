/**
 * What the Admin actor accepts: the JSON bodies of its HTTP routes and the messages of its mailbox,
 * each with its zod schema (bodies are strict: an unknown field is a 400 naming it).
 */
import { z } from 'zod';

/** `POST /admin/actors/{restart,stop,start}`: an actor path (`/pipeline/deliverer`) or unique name. */
export const ActorActionBody = z.strictObject({
  actor: z.string().trim().min(1, 'must name an actor by path or name').max(256),
});
export type ActorActionBody = z.infer<typeof ActorActionBody>;

export const ACTOR_ACTIONS = ['restart', 'stop', 'start'] as const;
export type ActorAction = (typeof ACTOR_ACTIONS)[number];

/** Mailbox messages. `address` replies with where the API listens (`{ address, family, port }` or null). */
export const AdminMessage = z.discriminatedUnion('type', [z.strictObject({ type: z.literal('address') })]);
export type AdminMessage = z.infer<typeof AdminMessage>;
