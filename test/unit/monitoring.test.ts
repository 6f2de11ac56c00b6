// monitoring/ and runbooks/ are written against the code: every metric an alert rule queries is
// registered by the node (histogram series included), with only documented labels; every alert
// carries severity, summary, description and a runbook_url that resolves to a runbook heading; every
// alert has promtool unit tests in monitoring/tests/ that see it fire and see it quiet (.ci/run runs
// them with `promtool test rules`); and every ETHHOOK_ERR_* code the runbooks tell an SRE to search
// for is in the catalog.
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ERROR_CATALOG } from '../../src/errors.ts';
import { registryWithAllMetrics } from '../support/metrics.ts';

const root = new URL('../../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), 'utf8');

interface Rule {
  alert?: string;
  expr?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
const rules: Rule[] = (parse(read('monitoring/alerts.yml')) as { groups: { rules: Rule[] }[] }).groups.flatMap((g) => g.rules);
const alerts = rules.filter((r) => r.alert !== undefined);

/** name → type, from a registry built the way the node builds its own. */
function registeredMetrics(): Map<string, string> {
  const registry = registryWithAllMetrics();
  return new Map(registry.getMetricsAsArray().map((m) => [m.name, String(m.type)]));
}

/** name → label names, as the README's Metrics section documents them (`name{a,b}`). */
function documentedLabels(): Map<string, string[]> {
  const readme = read('README.md');
  const start = readme.indexOf('## Metrics');
  const section = readme.slice(start, readme.indexOf('\n## ', start + 1));
  return new Map([...section.matchAll(/`([a-z][a-z0-9_]+)(?:\{([^}]*)\})?`/g)].map((m) => [m[1]!, m[2] ? m[2].split(',') : []]));
}

// Labels Prometheus attaches itself: the scrape target's (`cluster` is set by the scrape config, see
// monitoring/README.md).
const TARGET_LABELS = ['instance', 'job', 'cluster'];
const KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'and',
  'or',
  'unless',
  'bool',
  'offset',
  'inf',
  'nan',
]);

/** The series names an expression selects, each with the label names its matchers use. */
function selectors(expr: string): { name: string; matchers: string[] }[] {
  const out: { name: string; matchers: string[] }[] = [];
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""') // string literals can hold anything
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ') // grouping labels
    .replace(/\[[^\]]*\]/g, ' ') // range durations
    .replace(/\b\d[\w.]*/g, ' '); // numbers and offset durations (5m)
  for (const m of bare.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?\s*(\()?/g)) {
    const [, name, braces, call] = m;
    if (call || KEYWORDS.has(name!.toLowerCase())) continue; // a function, or an operator word
    const matchers = braces ? [...braces.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)].map((x) => x[1]!) : [];
    out.push({ name: name!, matchers });
  }
  return out;
}

/** The labels named in by/without/on/ignoring clauses. */
function groupingLabels(expr: string): string[] {
  return [...expr.matchAll(/\b(?:by|without|on|ignoring)\s*\(([^)]*)\)/g)].flatMap((m) =>
    m[1]!
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  );
}

/** The metric a series name belongs to: itself, or the histogram behind a _bucket/_sum/_count series. */
function metricOf(series: string, registered: Map<string, string>): string | undefined {
  if (registered.has(series)) return series;
  const m = /^(.*)_(bucket|sum|count)$/.exec(series);
  return m && registered.get(m[1]!) === 'histogram' ? m[1] : undefined;
}

/** GitHub's heading anchors: lowercase, punctuation dropped, spaces to '-', repeats suffixed -1, -2. */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  const body = markdown.replace(/^```[\s\S]*?^```/gm, ''); // '#' lines in code blocks are not headings
  for (const m of body.matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const base = m[1]!
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

describe('the expression parser of this test', () => {
  it('finds series and matchers, and skips functions, keywords, grouping labels and strings', () => {
    expect(
      selectors('sum by (instance, actor) (rate(a_total{reason!="x{y}", kind=~"p|q"}[5m])) / on (instance) b > 0.2 and c_bucket offset 5m'),
    ).toEqual([
      { name: 'a_total', matchers: ['reason', 'kind'] },
      { name: 'b', matchers: [] },
      { name: 'c_bucket', matchers: [] },
    ]);
  });

  it('computes GitHub anchors', () => {
    expect([...anchors('# Runbook: chains\n## Drain a node with SIGTERM\n```sh\n# not a heading\n```\n## A\n## A\n')]).toEqual([
      'runbook-chains',
      'drain-a-node-with-sigterm',
      'a',
      'a-1',
    ]);
  });
});

describe('monitoring/alerts.yml', () => {
  const registered = registeredMetrics();
  const documented = documentedLabels();

  it('has alerts with unique names', () => {
    expect(alerts.length).toBeGreaterThanOrEqual(20);
    expect(rules.length).toBe(alerts.length);
    expect(new Set(alerts.map((a) => a.alert)).size).toBe(alerts.length);
  });

  it('queries only metrics the node registers', () => {
    const unknown = alerts.flatMap((a) =>
      selectors(a.expr ?? '')
        .filter((s) => !metricOf(s.name, registered))
        .map((s) => `${a.alert}: ${s.name}`),
    );
    expect(unknown).toEqual([]);
    for (const a of alerts) expect(selectors(a.expr ?? '').length, a.alert).toBeGreaterThan(0);
  });

  it('uses only documented label names', () => {
    const wrong: string[] = [];
    for (const a of alerts) {
      const used = selectors(a.expr!);
      const allowed = new Set(TARGET_LABELS);
      for (const s of used) {
        const metric = metricOf(s.name, registered)!;
        const labels = [...(documented.get(metric) ?? []), ...TARGET_LABELS, ...(s.name.endsWith('_bucket') ? ['le'] : [])];
        for (const l of labels) allowed.add(l);
        for (const l of s.matchers) if (!labels.includes(l)) wrong.push(`${a.alert}: ${s.name}{${l}}`);
      }
      for (const l of groupingLabels(a.expr!)) if (!allowed.has(l)) wrong.push(`${a.alert}: by (${l})`);
    }
    expect(wrong).toEqual([]);
  });

  it('gives every alert a severity, a summary, a description and a runbook_url', () => {
    for (const a of alerts) {
      expect(['critical', 'warning', 'info'], a.alert).toContain(a.labels?.severity);
      for (const key of ['summary', 'description', 'runbook_url']) expect(a.annotations?.[key], `${a.alert} ${key}`).toMatch(/\S/);
    }
  });

  it('links every alert to an existing runbook heading', () => {
    const broken: string[] = [];
    for (const a of alerts) {
      const m = /^runbooks\/([a-z-]+\.md)#(.+)$/.exec(a.annotations!.runbook_url!);
      if (!m) {
        broken.push(`${a.alert}: ${a.annotations!.runbook_url}`);
        continue;
      }
      let headings: Set<string>;
      try {
        headings = anchors(read(`runbooks/${m[1]}`));
      } catch {
        broken.push(`${a.alert}: no file runbooks/${m[1]}`);
        continue;
      }
      if (!headings.has(m[2]!)) broken.push(`${a.alert}: no heading #${m[2]} in runbooks/${m[1]}`);
    }
    expect(broken).toEqual([]);
  });
});

describe('monitoring/tests/ (promtool unit tests)', () => {
  interface AlertTest {
    alertname: string;
    exp_alerts?: unknown[];
  }
  interface TestFile {
    rule_files: string[];
    tests: { alert_rule_test?: AlertTest[] }[];
  }
  const names = readdirSync(new URL('monitoring/tests/', root)).filter((f) => f.endsWith('.yml'));
  const files = names.map((f) => parse(read(`monitoring/tests/${f}`)) as TestFile);
  const cases = files.flatMap((f) => f.tests.flatMap((t) => t.alert_rule_test ?? []));

  it('load monitoring/alerts.yml', () => {
    expect(names.length).toBeGreaterThan(0);
    for (const f of files) expect(f.rule_files).toEqual(['../alerts.yml']);
  });

  it('see every alert fire and see it quiet', () => {
    const firing = new Set(cases.filter((c) => (c.exp_alerts ?? []).length > 0).map((c) => c.alertname));
    const quiet = new Set(cases.filter((c) => (c.exp_alerts ?? []).length === 0).map((c) => c.alertname));
    const alertNames = alerts.map((a) => a.alert!);
    expect(alertNames.filter((n) => !firing.has(n))).toEqual([]);
    expect(alertNames.filter((n) => !quiet.has(n))).toEqual([]);
    expect(cases.map((c) => c.alertname).filter((n) => !alertNames.includes(n))).toEqual([]);
  });
});

describe('runbooks/', () => {
  const files = readdirSync(new URL('runbooks/', root)).filter((f) => f.endsWith('.md'));

  it('has one file per area and an index', () => {
    expect(files.sort()).toEqual([
      'README.md',
      'actors.md',
      'chains.md',
      'cluster.md',
      'governance.md',
      'store.md',
      'streams.md',
      'webhooks.md',
    ]);
  });

  it('names only error codes of the catalog', () => {
    const known = new Set(ERROR_CATALOG.map((e) => e.code));
    const texts = [...files.map((f) => read(`runbooks/${f}`)), read('monitoring/alerts.yml')];
    const named = new Set(texts.flatMap((t) => [...t.matchAll(/ETHHOOK_ERR_[A-Z0-9_]+/g)].map((m) => m[0])));
    expect(named.size).toBeGreaterThan(20);
    expect([...named].filter((c) => !known.has(c))).toEqual([]);
  });

  it('has only links between runbooks that resolve', () => {
    const broken: string[] = [];
    for (const f of files) {
      for (const m of read(`runbooks/${f}`).matchAll(/\]\(([a-z-]*\.md)?#([^)]+)\)/gi)) {
        const target = m[1] ?? f;
        if (!files.includes(target) || !anchors(read(`runbooks/${target}`)).has(m[2]!)) broken.push(`${f} → ${m[0]}`);
      }
    }
    expect(broken).toEqual([]);
  });
});
