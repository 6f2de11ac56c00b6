// Every metric the README documents (what dashboards, alerts and runbooks are written against) is
// registered by the code, under exactly that name.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { registryWithAllMetrics } from '../support/metrics.ts';

function documented(): string[] {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const section = readme.slice(readme.indexOf('## Metrics'), readme.indexOf('\n## ', readme.indexOf('## Metrics') + 1));
  return [...new Set([...section.matchAll(/`([a-z][a-z0-9_]+)(?:\{[^}]*\})?`/g)].map((m) => m[1]!))].filter((n) => n.includes('_'));
}

describe('metric catalog', () => {
  it('registers every metric named in the README', async () => {
    const registry = registryWithAllMetrics();
    const registered = new Set(registry.getMetricsAsArray().map((m) => m.name));
    const names = documented();
    expect(names.length).toBeGreaterThan(30);
    expect(names.filter((n) => !registered.has(n))).toEqual([]);
  });
});
