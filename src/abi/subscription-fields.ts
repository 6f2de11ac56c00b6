/**
 * A subscription's `abi`, `events` and `filter` as given at creation, checked and turned into what is
 * stored (src/store/subscriptions.ts): the chosen events as canonical declarations (events.ts), the
 * topic0 they mean folded into `topics`, and the filter (checked against those events, filter.ts).
 *
 * `topics[0]` and the events together:
 * - `topics` absent, or its position 0 `null`: position 0 becomes the topic0 of every chosen event;
 * - `topics[0]` given: each of its topics must be the topic0 of a chosen event (else the two contradict:
 *   refused at `topics[0]`). Without `events`, `topics[0]` narrows the abi's events to those it names;
 *   with `events`, every event they pick must be in `topics[0]` too (else refused at `events[i]`).
 *   The stored `topics[0]` is the given one, the stored abi the events both allow.
 * `events` without `abi` is refused, and so is a filter on `args` without an abi (filter.ts).
 * Throws AbiInputError naming the field.
 */
import { AbiInputError, chooseEvents, type ChosenEvent } from './events.ts';
import { compileFilter } from './filter.ts';

export type TopicPosition = null | string | string[];

export interface AbiFieldsInput {
  abi?: readonly unknown[] | undefined;
  events?: readonly string[] | undefined;
  filter?: unknown;
  /** Normalized already: lowercase, deduplicated, `[]` as null. */
  topics?: TopicPosition[] | undefined;
}

export interface AbiFields {
  /** The chosen events' canonical declarations. */
  abi?: string[];
  topics?: TopicPosition[];
  filter?: unknown;
}

export function resolveAbiFields(input: AbiFieldsInput): AbiFields {
  if (input.events !== undefined && input.abi === undefined)
    throw new AbiInputError(['events'], 'picks events of an abi: give the abi too');
  let chosen: ChosenEvent[] | undefined;
  let topics = input.topics;
  if (input.abi !== undefined) {
    chosen = chooseEvents(input.abi, input.events);
    const given = alternatives(topics?.[0]);
    if (given.length === 0) {
      topics = [oneOrList(chosen.map((e) => e.topic0)), ...(topics ?? []).slice(1)];
    } else {
      for (const t of given) {
        if (!chosen.some((e) => e.topic0 === t))
          throw new AbiInputError(['topics', 0], `${t} is not the topic0 of a chosen event (${chosen.map((e) => e.signature).join(', ')})`);
      }
      if (input.events !== undefined) {
        const left = chosen.find((e) => !given.includes(e.topic0));
        if (left !== undefined)
          throw new AbiInputError(
            ['events', input.events.findIndex((n) => n === left.name || n.replace(/\s+/g, '') === left.signature)],
            `picks ${left.signature}, whose topic0 topics[0] leaves out`,
          );
      }
      chosen = chosen.filter((e) => given.includes(e.topic0));
    }
  }
  if (input.filter !== undefined) compileFilter(input.filter, chosen);
  return {
    ...(chosen !== undefined ? { abi: chosen.map((e) => e.declaration) } : {}),
    ...(topics !== undefined ? { topics } : {}),
    ...(input.filter !== undefined ? { filter: input.filter } : {}),
  };
}

function alternatives(p: TopicPosition | undefined): string[] {
  return p === null || p === undefined ? [] : typeof p === 'string' ? [p] : p;
}

function oneOrList(topics: string[]): string | string[] {
  return topics.length === 1 ? topics[0]! : topics;
}
