/**
 * How a field is named to operators, in config errors and in admin API `field`s alike:
 * `['chains', 0, 'wsUrl']` → `chains[0].wsUrl`; keys that are not identifiers are quoted in brackets
 * (`runtime.actors["chain-listener:1"]`); the empty path is the empty string.
 */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (typeof segment === 'string' && /^[A-Za-z_$][\w$]*$/.test(segment)) out += out === '' ? segment : `.${segment}`;
    else out += `[${JSON.stringify(String(segment))}]`;
  }
  return out;
}
