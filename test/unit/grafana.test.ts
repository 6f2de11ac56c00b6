// monitoring/grafana/ is written against the code: every PromQL expression of every dashboard (panel
// targets, template variable queries, annotations) selects only metrics the node registers, with label
// names those metrics carry (or Prometheus' target labels, or the node's default labels from main.ts);
// counters and histogram series are only read through rate/irate/increase, gauges never are, and
// histogram_quantile gets buckets grouped by `le`; legends name labels the result has; every panel and
// query uses the `datasource` template variable; panel ids are unique; the alerts the panels name exist.
import { readdirSync, readFileSync } from 'node:fs';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { registerKernelMetrics, registerProcessMetrics } from '../../src/runtime/metrics.ts';
import { ActorStats } from '../../src/runtime/stats.ts';
import { registryWithAllMetrics } from '../support/metrics.ts';

const root = new URL('../../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), 'utf8');

// ---- the metric catalog, as the node registers it ----

interface MetricInfo {
  type: string;
  /** Label names the node puts on the metric (a histogram's `le` excluded); undefined if unknown. */
  labels: Set<string> | undefined;
}

const mainTs = read('src/main.ts');
/** Labels the node adds to every series (`registry.setDefaultLabels({ node: ... })` in main.ts). */
const DEFAULT_LABELS = [...(/setDefaultLabels\(\{([^}]*)\}\)/.exec(mainTs)?.[1] ?? '').matchAll(/([a-zA-Z_]\w*)\s*:/g)].map((m) => m[1]!);
/** main.ts registers Node's process metrics (process_*, nodejs_*) on the registry it serves. */
const PROCESS_METRICS = /registerProcessMetrics\(registry\)/.test(mainTs);
// Labels Prometheus attaches itself to every scraped series.
const TARGET_LABELS = ['instance', 'job', 'cluster'];

/**
 * name → type and labels, from registryWithAllMetrics() (plus the process metrics main.ts adds). The
 * kernel's metrics are computed at scrape time and declare no label names, so theirs are read from the
 * samples the kernel produces for one actor.
 */
function catalog(): Promise<Map<string, MetricInfo>> {
  catalogOnce ??= buildCatalog();
  return catalogOnce;
}
let catalogOnce: Promise<Map<string, MetricInfo>> | undefined;

async function buildCatalog(): Promise<Map<string, MetricInfo>> {
  const registry = registryWithAllMetrics();
  if (PROCESS_METRICS) registerProcessMetrics(registry);
  const sampled = new Registry();
  registerKernelMetrics(sampled, () => [
    { path: '/pipeline/matcher', stats: new ActorStats(), mailboxSize: 0, mailboxCapacity: 1, up: true, manuallyStopped: false },
  ]);
  const out = new Map<string, MetricInfo>();
  for (const m of registry.getMetricsAsArray()) {
    let labels = (m as { labelNames?: readonly string[] }).labelNames;
    const sample = labels === undefined ? sampled.getSingleMetric(m.name) : undefined;
    if (sample) labels = [...new Set((await sample.get()).values.flatMap((v) => Object.keys(v.labels)))].filter((l) => l !== 'le');
    out.set(m.name, { type: String(m.type), labels: labels === undefined ? undefined : new Set(labels) });
  }
  return out;
}

/** The metric a series name belongs to: itself, or the histogram behind a _bucket/_sum/_count series. */
function metricOf(series: string, metrics: Map<string, MetricInfo>): string | undefined {
  if (metrics.has(series)) return series;
  const m = /^(.*)_(bucket|sum|count)$/.exec(series);
  return m && metrics.get(m[1]!)?.type === 'histogram' ? m[1] : undefined;
}

/** Counters and a histogram's series only make sense as a rate or an increase. */
function isCumulative(series: string, metrics: Map<string, MetricInfo>): boolean {
  const metric = metricOf(series, metrics);
  return metric !== undefined && (metrics.get(metric)!.type === 'counter' || metric !== series);
}

/** Label names a series can be selected or grouped by. */
function labelsOf(series: string, metrics: Map<string, MetricInfo>): string[] {
  const metric = metricOf(series, metrics);
  const own = metric ? [...(metrics.get(metric)!.labels ?? [])] : [];
  return [...own, ...TARGET_LABELS, ...DEFAULT_LABELS, ...(series.endsWith('_bucket') ? ['le'] : [])];
}

// ---- a small PromQL reader, enough for these dashboards ----

const STRING = /"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g;
const GROUPING = /\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g;
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
const RANGE_FUNCTIONS = new Set(['rate', 'irate', 'increase']);

interface Selector {
  name: string;
  /** Label names its matchers use. */
  matchers: string[];
  /** The function applied to it when it is a range selector (`rate(x[5m])` → 'rate'), else null. */
  rangeOf: string | null;
  range: boolean;
}

/** The series an expression selects, with their matchers and whether they are range selectors. */
function selectors(expr: string): Selector[] {
  const bare = expr
    .replace(STRING, '""') // string literals can hold anything
    .replace(GROUPING, ' ')
    .replace(/\[[^\]]*\]/g, '[]') // range durations, Grafana's $__rate_interval included
    .replace(/\b\d[\w.]*/g, ' '); // numbers and offset durations
  const out: Selector[] = [];
  for (const m of bare.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?\s*(\[\])?\s*(\()?/g)) {
    const [, name, braces, range, call] = m;
    if (call || KEYWORDS.has(name!.toLowerCase())) continue; // a function, or an operator word
    const matchers = braces ? [...braces.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)].map((x) => x[1]!) : [];
    const fn = range ? (/([a-zA-Z_]\w*)\s*\(\s*$/.exec(bare.slice(0, m.index))?.[1] ?? null) : null;
    out.push({ name: name!, matchers, range: range !== undefined, rangeOf: fn });
  }
  return out;
}

/** The labels named in by/without/on/ignoring/group_left/group_right clauses. */
function groupingLabels(expr: string): string[] {
  return [...expr.replace(STRING, '""').matchAll(GROUPING)].flatMap((m) =>
    m[0]
      .slice(m[0].indexOf('(') + 1, -1)
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  );
}

/** The arguments of every call of `fn`, parentheses balanced. */
function callArguments(expr: string, fn: string): string[] {
  const out: string[] = [];
  const bare = expr.replace(STRING, '""');
  for (const m of bare.matchAll(new RegExp(`\\b${fn}\\s*\\(`, 'g'))) {
    let depth = 1;
    let i = m.index + m[0].length;
    for (; i < bare.length && depth > 0; i++) depth += bare[i] === '(' ? 1 : bare[i] === ')' ? -1 : 0;
    out.push(bare.slice(m.index + m[0].length, i - 1));
  }
  return out;
}

/** The expression without its histogram_quantile(...) calls. */
function outsideQuantiles(expr: string): string {
  let bare = expr.replace(STRING, '""');
  for (const args of callArguments(bare, 'histogram_quantile')) bare = bare.replace(args, ' ');
  return bare;
}

/** Template variables an expression refers to: $name, ${name}, ${name:format}, [[name]]. */
function variablesUsed(expr: string): string[] {
  return [...expr.matchAll(/\$\{(\w+)(?::[^}]*)?\}|\$(\w+)|\[\[(\w+)(?::[^\]]*)?\]\]/g)].map((m) => (m[1] ?? m[2] ?? m[3])!);
}
// Grafana's own variables.
const BUILTIN_VARIABLES = new Set([
  '__rate_interval',
  '__interval',
  '__interval_ms',
  '__range',
  '__range_s',
  '__range_ms',
  '__dashboard',
  '__from',
  '__to',
]);

/** The by-list of an expression that starts with an aggregation (or a quantile of one): its result labels. */
function leadingBy(expr: string): string[] | null {
  const m = /^\s*(?:histogram_quantile\s*\(\s*[\d.]+\s*,\s*)?(?:sum|min|max|avg|count|group|stddev|stdvar)\s+by\s*\(([^)]*)\)/.exec(expr);
  return m
    ? m[1]!
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
    : null;
}

// ---- the dashboards ----

interface Target {
  expr?: string;
  refId?: string;
  legendFormat?: string;
  format?: string;
  datasource?: unknown;
}
interface Panel {
  id: number;
  type: string;
  title: string;
  description?: string;
  datasource?: unknown;
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: Target[];
  panels?: Panel[];
}
interface Variable {
  name: string;
  type: string;
  definition?: string;
  query?: string | { query?: string };
  datasource?: unknown;
}
interface Annotation {
  name: string;
  builtIn?: number;
  expr?: string;
  datasource?: unknown;
}
interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: Variable[] };
  annotations: { list: Annotation[] };
}

/** Where a PromQL expression comes from, and what Grafana does with it. */
interface Query {
  where: string;
  kind: 'target' | 'variable' | 'annotation';
  expr: string;
  legend?: string;
  format?: string;
  /** For `label_values(selector, label)`: the label whose values are listed. */
  label?: string;
}

const DATASOURCE = { type: 'prometheus', uid: '${datasource}' };
const dir = 'monitoring/grafana/';
const files = readdirSync(new URL(dir, root))
  .filter((f) => f.endsWith('.json'))
  .sort();
const dashboards = files.map((file) => ({ file, text: read(dir + file), json: JSON.parse(read(dir + file)) as Dashboard }));

/** The alert names of monitoring/alerts.yml. */
const alertNames = new Set(
  (parse(read('monitoring/alerts.yml')) as { groups: { rules: { alert?: string }[] }[] }).groups
    .flatMap((g) => g.rules.map((r) => r.alert ?? ''))
    .filter(Boolean),
);

/** Every panel, those inside collapsed rows included. */
function allPanels(panels: Panel[]): Panel[] {
  return panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
}

function variableQuery(v: Variable): string {
  return typeof v.query === 'string' ? v.query : (v.query?.query ?? '');
}

function queries(file: string, d: Dashboard): Query[] {
  const out: Query[] = [];
  for (const p of allPanels(d.panels)) {
    for (const t of p.targets ?? []) {
      out.push({
        where: `${file} panel ${p.id} "${p.title}" ${t.refId}`,
        kind: 'target',
        expr: t.expr ?? '',
        ...(t.legendFormat !== undefined ? { legend: t.legendFormat } : {}),
        ...(t.format !== undefined ? { format: t.format } : {}),
      });
    }
  }
  for (const v of d.templating.list.filter((x) => x.type === 'query')) {
    const m = /^\s*label_values\(\s*(.+?)\s*,\s*([a-zA-Z_]\w*)\s*\)\s*$/s.exec(variableQuery(v));
    out.push({ where: `${file} variable $${v.name}`, kind: 'variable', expr: m?.[1] ?? '', label: m?.[2] ?? '' });
  }
  for (const a of d.annotations.list.filter((x) => !x.builtIn))
    out.push({ where: `${file} annotation "${a.name}"`, kind: 'annotation', expr: a.expr ?? '' });
  return out;
}

/** Every problem of one expression against the catalog (empty when it is sound). */
function problems(q: Query, metrics: Map<string, MetricInfo>, variables: Set<string>): string[] {
  const wrong: string[] = [];
  const say = (msg: string) => wrong.push(`${q.where}: ${msg}`);
  const used = selectors(q.expr);
  if (used.length === 0) say(`no series in "${q.expr}"`);
  const allowed = new Set<string>();
  for (const s of used) {
    if (!metricOf(s.name, metrics)) {
      say(`${s.name} is not registered`);
      continue;
    }
    const labels = labelsOf(s.name, metrics);
    for (const l of labels) allowed.add(l);
    for (const l of s.matchers) if (!labels.includes(l)) say(`${s.name} has no label ${l}`);
    if (q.kind === 'variable') continue; // label_values() lists series: any type will do
    const cumulative = isCumulative(s.name, metrics);
    if (cumulative && !(s.range && RANGE_FUNCTIONS.has(s.rangeOf ?? ''))) say(`${s.name} is cumulative: read it with rate/irate/increase`);
    if (!cumulative && s.range && RANGE_FUNCTIONS.has(s.rangeOf ?? ''))
      say(`${s.name} is a gauge: ${s.rangeOf}() is for counters (deriv/delta for gauges)`);
  }
  for (const l of groupingLabels(q.expr)) if (!allowed.has(l)) say(`groups by ${l}, which none of its series has`);
  if (q.label !== undefined && !allowed.has(q.label)) say(`lists values of ${q.label}, which its series does not have`);

  for (const args of callArguments(q.expr, 'histogram_quantile')) {
    const phi = Number(/^\s*([\d.]+)\s*,/.exec(args)?.[1]);
    if (!(phi >= 0 && phi <= 1)) say(`histogram_quantile needs a quantile in [0, 1]: ${args}`);
    if (!selectors(args).some((s) => s.name.endsWith('_bucket') && metricOf(s.name, metrics) !== s.name))
      say(`histogram_quantile reads no histogram _bucket series: ${args}`);
    for (const g of args.matchAll(/\b(by|without)\s*\(([^)]*)\)/g)) {
      const keeps = g[2]!
        .split(',')
        .map((s) => s.trim())
        .includes('le');
      if (keeps !== (g[1] === 'by')) say(`histogram_quantile must keep le when aggregating: ${g[0]}`);
    }
  }
  const looseBuckets = selectors(outsideQuantiles(q.expr)).filter((s) => s.name.endsWith('_bucket'));
  if (looseBuckets.length > 0 && !(q.format === 'heatmap' && groupingLabels(q.expr).includes('le'))) {
    say(`${looseBuckets[0]!.name} outside histogram_quantile: only a heatmap target grouped by le shows raw buckets`);
  }

  const legendLabels = [...(q.legend ?? '').matchAll(/\{\{\s*([a-zA-Z_]\w*)\s*\}\}/g)].map((m) => m[1]!);
  const lead = /group_(left|right)/.test(q.expr) ? null : leadingBy(q.expr);
  for (const l of legendLabels) {
    if (!allowed.has(l)) say(`legend names ${l}, which none of its series has`);
    else if (lead && !lead.includes(l)) say(`legend names ${l}, which the aggregation by (${lead.join(', ')}) drops`);
  }
  for (const v of variablesUsed(q.expr))
    if (!variables.has(v) && !BUILTIN_VARIABLES.has(v)) say(`uses $${v}, which is not a template variable`);
  return wrong;
}

// ---- tests ----

describe('the expression reader of this test', () => {
  it('finds series, matchers and range functions, and skips functions, keywords, grouping labels and strings', () => {
    expect(
      selectors(
        'sum by (instance, actor) (rate(a_total{reason!="x{y}", kind=~"p|q"}[$__rate_interval])) / on (instance) group_left b > bool 0.2 and c_bucket offset 5m',
      ),
    ).toEqual([
      { name: 'a_total', matchers: ['reason', 'kind'], range: true, rangeOf: 'rate' },
      { name: 'b', matchers: [], range: false, rangeOf: null },
      { name: 'c_bucket', matchers: [], range: false, rangeOf: null },
    ]);
    expect(groupingLabels('max by (chain) (x) - on (chain) group_right (node) y{a="by (z)"}')).toEqual(['chain', 'chain', 'node']);
    expect(callArguments('histogram_quantile(0.99, sum by (le) (rate(x_bucket[5m]))) + 1', 'histogram_quantile')).toEqual([
      '0.99, sum by (le) (rate(x_bucket[5m]))',
    ]);
    expect(variablesUsed('x{a=~"$job", b="${node:regex}", c="[[old]]"}[$__rate_interval]')).toEqual([
      'job',
      'node',
      'old',
      '__rate_interval',
    ]);
    expect(leadingBy('histogram_quantile(0.5, sum by (instance, le) (rate(x[1m])))')).toEqual(['instance', 'le']);
  });

  it('finds the default labels and process metrics main.ts gives the registry', () => {
    expect(DEFAULT_LABELS).toEqual(['node']);
    expect(PROCESS_METRICS).toBe(true);
  });

  it('knows the type and label names of every registered metric', async () => {
    const metrics = await catalog();
    expect(metrics.get('actor_restarts_total')).toEqual({ type: 'counter', labels: new Set(['actor', 'reason']) });
    expect(metrics.get('chain_rpc_errors_total')).toEqual({ type: 'counter', labels: new Set(['chain', 'kind']) });
    expect(metrics.get('actor_message_duration_seconds')).toEqual({ type: 'histogram', labels: new Set(['actor']) });
    expect([...metrics].filter(([, m]) => m.labels === undefined).map(([name]) => name)).toEqual([]);
  });

  it('reports what it must', async () => {
    const metrics = await catalog();
    const vars = new Set(['job']);
    const check = (expr: string, extra: Partial<Query> = {}) => problems({ where: 'q', kind: 'target', expr, ...extra }, metrics, vars);
    expect(check('sum by (actor) (rate(actor_panics_total{job=~"$job"}[5m]))', { legend: '{{actor}}' })).toEqual([]);
    expect(check('rate(actor_panic_total[5m])')).toEqual(['q: actor_panic_total is not registered']);
    expect(check('rate(actor_panics_total{chain="x"}[5m])')).toEqual(['q: actor_panics_total has no label chain']);
    expect(check('sum by (kind) (rate(actor_panics_total[5m]))')).toEqual(['q: groups by kind, which none of its series has']);
    expect(check('actor_panics_total')).toEqual(['q: actor_panics_total is cumulative: read it with rate/irate/increase']);
    expect(check('rate(actor_up[5m])')).toEqual(['q: actor_up is a gauge: rate() is for counters (deriv/delta for gauges)']);
    expect(check('histogram_quantile(0.99, sum by (actor) (rate(actor_message_duration_seconds_bucket[5m])))')).toEqual([
      'q: histogram_quantile must keep le when aggregating: by (actor)',
    ]);
    expect(check('histogram_quantile(99, rate(actor_message_duration_seconds_bucket[5m]))')).toEqual([
      'q: histogram_quantile needs a quantile in [0, 1]: 99, rate(actor_message_duration_seconds_bucket[5m])',
    ]);
    expect(check('histogram_quantile(0.5, rate(actor_message_duration_seconds_sum[5m]))')).toEqual([
      'q: histogram_quantile reads no histogram _bucket series: 0.5, rate(actor_message_duration_seconds_sum[5m])',
    ]);
    expect(check('sum by (le) (rate(actor_message_duration_seconds_bucket[5m]))')).toHaveLength(1);
    expect(check('sum by (le) (rate(actor_message_duration_seconds_bucket[5m]))', { format: 'heatmap' })).toEqual([]);
    expect(check('sum by (instance) (rate(actor_panics_total[5m]))', { legend: '{{actor}}' })).toEqual([
      'q: legend names actor, which the aggregation by (instance) drops',
    ]);
    expect(check('actor_up', { legend: '{{chain}}' })).toEqual(['q: legend names chain, which none of its series has']);
    expect(check('actor_up{instance=~"$instance"}')).toEqual(['q: uses $instance, which is not a template variable']);
    expect(problems({ where: 'v', kind: 'variable', expr: 'actor_up', label: 'chain' }, metrics, vars)).toEqual([
      'v: lists values of chain, which its series does not have',
    ]);
  });
});

describe('monitoring/grafana/', () => {
  it('holds the overview and the webhooks drill-down, with distinct uids, on a recent schema', () => {
    expect(files).toEqual(['ethhook-overview.json', 'ethhook-webhooks.json']);
    expect(new Set(dashboards.map((d) => d.json.uid)).size).toBe(dashboards.length);
    for (const { file, json } of dashboards) {
      expect(json.uid, file).toBe(file.replace(/\.json$/, ''));
      expect(json.schemaVersion, file).toBeGreaterThanOrEqual(36);
      expect(json.title, file).toMatch(/^ethhook/);
    }
  });

  for (const { file, json } of dashboards) {
    describe(file, () => {
      const panels = allPanels(json.panels);
      const variables = new Set(json.templating.list.map((v) => v.name));

      it('has unique panel ids', () => {
        const ids = panels.map((p) => p.id);
        expect(ids.every((id) => Number.isInteger(id) && id > 0)).toBe(true);
        expect(ids.length - new Set(ids).size).toBe(0);
      });

      it('lays its panels on the 24-column grid without overlap', () => {
        const wrong: string[] = [];
        for (const p of panels)
          if (p.gridPos.x < 0 || p.gridPos.w < 1 || p.gridPos.x + p.gridPos.w > 24) wrong.push(`${p.id} is off the grid`);
        const top = json.panels;
        for (const [i, a] of top.entries()) {
          for (const b of top.slice(i + 1)) {
            const apart =
              a.gridPos.x + a.gridPos.w <= b.gridPos.x ||
              b.gridPos.x + b.gridPos.w <= a.gridPos.x ||
              a.gridPos.y + a.gridPos.h <= b.gridPos.y ||
              b.gridPos.y + b.gridPos.h <= a.gridPos.y;
            if (!apart) wrong.push(`${a.id} overlaps ${b.id}`);
          }
        }
        expect(wrong).toEqual([]);
      });

      it('queries through the datasource template variable everywhere', () => {
        expect(json.templating.list.find((v) => v.name === 'datasource')).toMatchObject({ type: 'datasource', query: 'prometheus' });
        const wrong: string[] = [];
        for (const p of panels.filter((x) => x.type !== 'row')) {
          if (JSON.stringify(p.datasource) !== JSON.stringify(DATASOURCE)) wrong.push(`panel ${p.id} "${p.title}"`);
          for (const t of p.targets ?? [])
            if (t.datasource !== undefined && JSON.stringify(t.datasource) !== JSON.stringify(DATASOURCE))
              wrong.push(`panel ${p.id} target ${t.refId}`);
        }
        for (const v of json.templating.list.filter((x) => x.type === 'query'))
          if (JSON.stringify(v.datasource) !== JSON.stringify(DATASOURCE)) wrong.push(`variable ${v.name}`);
        for (const a of json.annotations.list.filter((x) => !x.builtIn))
          if (JSON.stringify(a.datasource) !== JSON.stringify(DATASOURCE)) wrong.push(`annotation ${a.name}`);
        expect(wrong).toEqual([]);
      });

      it('has instance and node variables listed from label_values, and a query in every panel', () => {
        for (const name of ['instance', 'node'])
          expect(variableQuery(json.templating.list.find((v) => v.name === name) ?? { name, type: '' }), name).toMatch(/^label_values\(/);
        // Grafana shows `definition` and runs `query`: they must say the same.
        const drifted = json.templating.list
          .filter((v) => v.type === 'query' && v.definition !== undefined && v.definition !== variableQuery(v))
          .map((v) => v.name);
        expect(drifted).toEqual([]);
        const empty = panels.filter((p) => p.type !== 'row' && !(p.targets ?? []).some((t) => t.expr?.trim())).map((p) => p.id);
        expect(empty).toEqual([]);
      });

      it('uses only registered metrics and their labels, each read the way its type requires', async () => {
        const metrics = await catalog();
        const all = queries(file, json);
        expect(all.filter((q) => q.kind === 'target').length).toBeGreaterThanOrEqual(file === 'ethhook-overview.json' ? 50 : 8);
        expect(all.flatMap((q) => problems(q, metrics, variables))).toEqual([]);
      });

      it('names only alerts that monitoring/alerts.yml defines', () => {
        const named = new Set([...JSON.stringify(json).matchAll(/\bEthhook[A-Z][A-Za-z]+\b/g)].map((m) => m[0]));
        expect(named.size).toBeGreaterThan(0);
        expect([...named].filter((a) => !alertNames.has(a))).toEqual([]);
      });
    });
  }
});

describe('the dashboards and the alerts', () => {
  it('give every alert a panel of the overview that helps confirm it', () => {
    const overview = dashboards.find((d) => d.file === 'ethhook-overview.json')!.json;
    const described = allPanels(overview.panels)
      .map((p) => p.description ?? '')
      .join('\n');
    expect(alertNames.size).toBeGreaterThanOrEqual(20);
    expect([...alertNames].filter((a) => !new RegExp(`\\b${a}\\b`).test(described))).toEqual([]);
  });

  it('are described in monitoring/grafana/README.md, which names only existing alerts', () => {
    const readme = read(`${dir}README.md`);
    for (const f of files) expect(readme, f).toContain(f);
    const named = new Set([...readme.matchAll(/\bEthhook[A-Z][A-Za-z]+\b/g)].map((m) => m[0]));
    expect(named.size).toBeGreaterThan(10);
    expect([...named].filter((a) => !alertNames.has(a))).toEqual([]);
  });
});
