/**
 * Parses input given to the store with its zod schema. A failure becomes one
 * `ETHHOOK_ERR_INVALID_INPUT` whose context lists every issue with its field path, so the admin API
 * can answer 400 naming the field.
 */
import type { z } from 'zod';
import { EthhookError } from '../runtime/errors.ts';

export interface FieldIssue {
  path: string;
  message: string;
}

export function parseInput<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issues: FieldIssue[] = result.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message }));
  const first = issues[0];
  throw new EthhookError('ETHHOOK_ERR_INVALID_INPUT', `invalid ${what}${first ? `: ${first.path || '(root)'}: ${first.message}` : ''}`, {
    what,
    issues,
  });
}
