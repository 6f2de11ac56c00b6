// deploy/ and config/cluster.example.yaml held to the code, on the real files. Every YAML parses; every
// file they build from or mount exists; each instance's effective configuration — the file it mounts,
// the image's ENV, then its own ETHHOOK_* variables (secrets replaced by placeholders) — passes
// loadConfig; the instances are interchangeable (one PostgreSQL store, distinct ids, no data volume of
// their own: a Deployment, not a StatefulSet); and what the orchestrators assume of that configuration
// (admin port and host, probe paths, grace periods, disruption budget, store, chain and governance
// addresses) is what it says.
import { generateKeyPairSync } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, posix, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, parseDocument } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { NPM_START } from '../../bench/e2e/node.ts';
import { ConfigError, formatConfigIssues } from '../../src/config/errors.ts';
import { loadConfig } from '../../src/config/load.ts';
import type { NodeConfig } from '../../src/config/schema.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DEPLOY = join(ROOT, 'deploy');
const CLUSTER_EXAMPLE = join(ROOT, 'config/cluster.example.yaml');
const tmp = mkdtempSync(join(tmpdir(), 'ethhook-deploy-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// ---- reading the files ----------------------------------------------------------------------------

/** Every document of a YAML file; merge keys (`<<: *anchor`) on, as compose reads them. */
function yamlDocuments(file: string): unknown[] {
  return parseAllDocuments(readFileSync(file, 'utf8'), { merge: true, uniqueKeys: true, prettyErrors: true }).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`${relative(ROOT, file)}: ${doc.errors.map((e) => e.message).join('; ')}`);
    return doc.toJS() as unknown;
  });
}

function yamlFile(file: string): unknown {
  const doc = parseDocument(readFileSync(file, 'utf8'), { merge: true, uniqueKeys: true });
  if (doc.errors.length > 0) throw new Error(`${relative(ROOT, file)}: ${doc.errors.map((e) => e.message).join('; ')}`);
  return doc.toJS() as unknown;
}

function yamlFilesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return yamlFilesUnder(path);
    return /\.ya?ml$/.test(name) ? [path] : [];
  });
}

/** The Dockerfile's instructions, continuation lines joined, comments dropped. */
function dockerfile(): { op: string; args: string }[] {
  const text = readFileSync(join(DEPLOY, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const [op = '', ...rest] = line.split(/\s+/);
      return { op: op.toUpperCase(), args: rest.join(' ') };
    });
}

const image = (() => {
  const steps = dockerfile();
  const one = (op: string) => {
    const found = steps.filter((s) => s.op === op);
    if (found.length !== 1) throw new Error(`deploy/Dockerfile: expected one ${op}, found ${found.length}`);
    return found[0]!.args;
  };
  const env: Record<string, string> = {};
  for (const s of steps.filter((step) => step.op === 'ENV')) {
    for (const pair of s.args.split(/\s+/)) {
      const eq = pair.indexOf('=');
      if (eq > 0) env[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
  }
  return {
    steps,
    env,
    workdir: one('WORKDIR'),
    user: one('USER'),
    volume: one('VOLUME'),
    expose: Number(one('EXPOSE')),
    entrypoint: z.array(z.string()).parse(JSON.parse(one('ENTRYPOINT'))),
    cmd: z.array(z.string()).parse(JSON.parse(one('CMD'))),
    healthcheck: one('HEALTHCHECK'),
    copies: steps.filter((s) => s.op === 'COPY').flatMap((s) => s.args.split(/\s+/).slice(0, -1)),
    /** Each COPY's sources and destination (relative to WORKDIR), in order. */
    copySteps: steps
      .filter((s) => s.op === 'COPY')
      .map((s) => {
        const parts = s.args.split(/\s+/);
        return { sources: parts.slice(0, -1), to: parts.at(-1)! };
      }),
  };
})();

// ---- secrets and other values the files leave to the operator -------------------------------------

const governanceKey = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'der' }).toString('base64');

/** What an operator supplies, by variable name: compose reads them from its host, k8s from its Secret. */
function placeholderFor(variable: string): string {
  if (variable === 'ETHHOOK_ADMIN_TOKENS') return 'read:placeholder-read-token-000,operate:placeholder-operate-token-000';
  if (variable === 'ETHHOOK_MASTER_KEY') return '00'.repeat(32);
  if (variable === 'GOVERNANCE_PUBLIC_KEY') return governanceKey;
  if (variable === 'POSTGRES_PASSWORD') return 'placeholder-postgres-password';
  if (variable === 'ETHHOOK_STORE__URL') return 'postgres://ethhook:placeholder@postgres.placeholder.invalid:5432/ethhook';
  if (/^ETHHOOK_CHAINS__\d+__WS_URL$/.test(variable)) return 'wss://rpc.placeholder.invalid/ws';
  if (/^ETHHOOK_CHAINS__\d+__HTTP_URL$/.test(variable)) return 'https://rpc.placeholder.invalid/rpc';
  throw new Error(`no placeholder for ${variable}: add one here and document the variable in deploy/README.md`);
}

/** Compose's interpolation: `${X}`, `${X:-default}`, `${X-default}`, `${X:?error}`, `${X?error}`, `$$`. */
function interpolate(value: string, read: (name: string) => string | undefined): string {
  return value.replace(
    /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}/g,
    (match, name: string | undefined, op?: string, arg?: string) => {
      if (name === undefined) return '$';
      const got = read(name);
      const missing = op?.startsWith(':') ? got === undefined || got === '' : got === undefined;
      if (!missing) return got!;
      if (op?.endsWith('?')) throw new Error(`compose: ${name}: ${arg}`);
      return op?.endsWith('-') ? (arg ?? '') : '';
    },
  );
}

function effectiveConfig(file: string, env: Record<string, string>): NodeConfig {
  try {
    return loadConfig({ file, env });
  } catch (err) {
    if (err instanceof ConfigError)
      throw new Error(`${relative(ROOT, file)} with ${JSON.stringify(env)}:\n${formatConfigIssues(err.issues)}`);
    throw err;
  }
}

/** `30s`, `1m30s`, `500ms` → milliseconds (compose's Go-style durations). */
function goDuration(text: string): number {
  const units: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text) throw new Error(`not a duration: ${text}`);
  return parts.reduce((ms, p) => ms + Number(p[1]) * units[p[2]!]!, 0);
}

/** Computed on first use, so a file that cannot be read fails the tests that need it, by name. */
function once<T>(compute: () => T): () => T {
  let value: { v: T } | undefined;
  return () => (value ??= { v: compute() }).v;
}

function flagValue(args: readonly string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i < 0 ? undefined : args[i + 1];
}

// ---- the compose file -----------------------------------------------------------------------------

const envValue = z.union([z.string(), z.number(), z.boolean(), z.null()]);
const ComposeService = z.looseObject({
  image: z.string().optional(),
  build: z.looseObject({ context: z.string(), dockerfile: z.string() }).optional(),
  entrypoint: z.array(z.string()).optional(),
  command: z.array(z.string()).optional(),
  environment: z.union([z.record(z.string(), envValue), z.array(z.string())]).optional(),
  volumes: z.array(z.string()).optional(),
  ports: z.array(z.string()).optional(),
  stop_grace_period: z.string().optional(),
  depends_on: z.record(z.string(), z.looseObject({ condition: z.string() })).optional(),
  healthcheck: z.looseObject({ test: z.array(z.string()) }).optional(),
});
type ComposeService = z.infer<typeof ComposeService>;
const Compose = z.looseObject({
  services: z.record(z.string(), ComposeService),
  volumes: z.record(z.string(), z.unknown().nullable()).optional(),
});

const compose = Compose.parse(yamlFile(join(DEPLOY, 'compose.yaml')));
const services = Object.entries(compose.services);

/** Every string value of a parsed YAML tree (compose interpolates values, not comments). */
const stringsOf = (node: unknown): string[] =>
  typeof node === 'string' ? [node] : typeof node === 'object' && node !== null ? Object.values(node).flatMap(stringsOf) : [];

/** The variables compose reads from its host (`${NAME...}`), anywhere in the file. */
const composeHostVariables = [
  ...new Set(stringsOf(compose).flatMap((value) => [...value.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1]!))),
];

function serviceEnv(service: ComposeService): Record<string, string> {
  const raw = service.environment ?? {};
  const pairs: [string, string][] = Array.isArray(raw)
    ? raw.map((item) => [item.split('=')[0]!, item.slice(item.indexOf('=') + 1)])
    : Object.entries(raw).map(([k, v]) => [k, v === null ? '' : String(v)]);
  return Object.fromEntries(pairs.map(([k, v]) => [k, interpolate(v, placeholderFor)]));
}

/** `source:target[:mode]` volume entries of a service. */
function mounts(service: ComposeService): { source: string; target: string }[] {
  return (service.volumes ?? []).map((entry) => {
    const [source = '', target = ''] = entry.split(':');
    return { source, target };
  });
}

function mountedAt(service: ComposeService, path: string): { source: string; target: string } | undefined {
  return mounts(service).find((m) => path === m.target || path.startsWith(`${m.target}/`));
}

const instances = once(() =>
  services
    .filter(([, s]) => s.command?.[0] === 'start')
    .map(([name, service]) => {
      const configPath = flagValue(service.command!, '--config');
      const mount = configPath === undefined ? undefined : mountedAt(service, configPath);
      if (configPath === undefined || mount === undefined || !mount.source.startsWith('.')) {
        throw new Error(`compose service ${name}: its --config must be a file bind-mounted from the repository`);
      }
      const file = join(DEPLOY, mount.source, posix.relative(mount.target, configPath));
      if (!existsSync(file)) throw new Error(`compose service ${name}: ${relative(ROOT, file)} does not exist`);
      const env = { ...image.env, ...serviceEnv(service) };
      return { name, service, file, env, config: effectiveConfig(file, env) };
    }),
);

const anvilService = services.find(([, s]) => s.entrypoint?.[0]?.endsWith('/node_modules/.bin/anvil'));
const governanceService = services.find(([, s]) => s.command?.[0] === 'governance-serve');
const postgresService = services.find(([, s]) => s.image?.startsWith('postgres:'));

/** The major version of a `postgres:<tag>` image (`postgres:16`, `postgres:16.4-bookworm`). */
const postgresMajor = (image: string | undefined) => Number(/^postgres:(\d+)/.exec(image ?? '')?.[1] ?? Number.NaN);

describe('deploy/compose.yaml: a local 3-instance cluster', () => {
  it('runs three interchangeable instances, distinct ids on one store, whose effective configs validate', () => {
    expect(instances().map((i) => i.name)).toEqual(['ethhook-0', 'ethhook-1', 'ethhook-2']);
    expect(new Set(instances().map((i) => i.config.node.id)).size).toBe(instances().length);
    for (const i of instances()) expect(existsSync(i.file)).toBe(true);
    for (const i of instances()) expect(i.config.store).toEqual(instances()[0]!.config.store);
    expect(instances()[0]!.config.store.kind).toBe('postgres');
  });

  it('builds every ethhook service from deploy/Dockerfile in the repository, and mounts only files that exist', () => {
    for (const [name, s] of services.filter(([, service]) => service !== postgresService?.[1])) {
      expect(s.build, name).toBeDefined();
      expect(existsSync(join(DEPLOY, s.build!.context, s.build!.dockerfile)), name).toBe(true);
      expect(join(DEPLOY, s.build!.context, s.build!.dockerfile)).toBe(join(DEPLOY, 'Dockerfile'));
      for (const m of mounts(s).filter((mount) => mount.source.startsWith('.'))) {
        expect(existsSync(join(DEPLOY, m.source)), `${name}: ${m.source}`).toBe(true);
      }
    }
  });

  it('gives the instances no data volume: their store is the postgres service, PostgreSQL 15 or newer', () => {
    expect(postgresService).toBeDefined();
    const [name, postgres] = postgresService!;
    expect(postgresMajor(postgres.image)).toBeGreaterThanOrEqual(15);
    const pgEnv = serviceEnv(postgres);
    expect(Object.keys(compose.volumes ?? {})).toContain(mountedAt(postgres, '/var/lib/postgresql/data')?.source);
    expect(postgres.healthcheck?.test).toContain('pg_isready');
    for (const i of instances()) {
      expect(mountedAt(i.service, i.config.node.dataDir), i.name).toBeUndefined();
      if (i.config.store.kind !== 'postgres') throw new Error(`${i.name}: store.kind ${i.config.store.kind}`);
      const url = new URL(i.config.store.url);
      expect(url.hostname).toBe(name);
      expect(url.port).toBe('5432');
      expect(decodeURIComponent(url.username)).toBe(pgEnv.POSTGRES_USER);
      expect(decodeURIComponent(url.password)).toBe(pgEnv.POSTGRES_PASSWORD);
      expect(url.pathname).toBe(`/${pgEnv.POSTGRES_DB}`);
      expect(i.service.depends_on?.[name]?.condition).toBe('service_healthy');
    }
  });

  it('gives each instance a host port of its own for its admin API', () => {
    const hostPorts = instances().map((i) => {
      expect(i.config.admin.host).toBe('0.0.0.0');
      const published = (i.service.ports ?? []).map((p) => p.split(':')).find((parts) => Number(parts.at(-1)) === i.config.admin.port);
      expect(published, `${i.name} publishes admin.port ${i.config.admin.port}`).toBeDefined();
      return published!.at(-2);
    });
    expect(new Set(hostPorts).size).toBe(instances().length);
  });

  it('gives each instance longer to stop than its node.shutdownDeadlineMs', () => {
    for (const i of instances()) expect(goDuration(i.service.stop_grace_period ?? '10s')).toBeGreaterThan(i.config.node.shutdownDeadlineMs);
  });

  it('points every instance at the anvil service: its host, port and chain id', () => {
    expect(anvilService).toBeDefined();
    const [name, anvil] = anvilService!;
    const args = anvil.command ?? [];
    expect(anvil.entrypoint).toEqual([posix.join(image.workdir, 'node_modules/.bin/anvil')]);
    expect(
      (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { optionalDependencies: object }).optionalDependencies,
    ).toHaveProperty('@foundry-rs/anvil-linux-amd64');
    expect(flagValue(args, '--host')).toBe('0.0.0.0');
    for (const i of instances()) {
      expect(i.config.devChain.enabled).toBe(false);
      expect(i.config.chains).toHaveLength(1);
      const url = new URL(i.config.chains[0]!.providers[0]!.wsUrl!);
      expect(url.hostname).toBe(name);
      expect(url.port).toBe(flagValue(args, '--port'));
      expect(String(i.config.chains[0]!.chainId)).toBe(flagValue(args, '--chain-id'));
      expect(i.service.depends_on?.[name]?.condition).toBe('service_healthy');
    }
    expect(anvil.healthcheck?.test.join(' ')).toContain(`:${flagValue(args, '--port')}`);
  });

  it('points every instance at the governance service, whose key and log live in its volume', () => {
    expect(governanceService).toBeDefined();
    const [name, governance] = governanceService!;
    const args = governance.command!;
    expect(flagValue(args, '--host')).toBe('0.0.0.0');
    for (const flag of ['--key', '--log']) {
      const path = flagValue(args, flag);
      expect(path, flag).toBeDefined();
      expect(Object.keys(compose.volumes ?? {})).toContain(mountedAt(governance, path!)?.source);
    }
    for (const i of instances()) {
      const url = new URL(i.config.governance.url!);
      expect(url.hostname).toBe(name);
      expect(url.port).toBe(flagValue(args, '--port'));
      expect(i.config.governance.publicKeys).toEqual([governanceKey]);
      expect(i.service.depends_on?.[name]?.condition).toBe('service_healthy');
    }
    expect(governance.healthcheck?.test.join(' ')).toContain(`:${flagValue(args, '--port')}/`);
  });

  it('takes secrets from the host environment, never from a file: without them the nodes refuse to start', () => {
    expect(composeHostVariables.sort()).toEqual([
      'ETHHOOK_ADMIN_TOKENS',
      'ETHHOOK_MASTER_KEY',
      'GOVERNANCE_PUBLIC_KEY',
      'POSTGRES_PASSWORD',
    ]);
    for (const i of instances()) {
      expect(i.config.admin.tokens.map((t) => t.role)).toEqual(['read', 'operate']);
      expect(i.env.ETHHOOK_MASTER_KEY).toBe(placeholderFor('ETHHOOK_MASTER_KEY'));
      expect(i.config.security.generateMasterKey).toBe(false);
    }
    // Unset on the host, the governance key is missing and the config says so.
    const bare = Object.fromEntries(
      Object.entries(instances()[0]!.service.environment as Record<string, unknown>).map(([k, v]) => [
        k,
        interpolate(String(v), () => undefined),
      ]),
    );
    expect(() => loadConfig({ file: instances()[0]!.file, env: { ...image.env, ...bare } })).toThrow(/governance\.publicKeys/);
  });
});

// ---- the Kubernetes manifests ---------------------------------------------------------------------

const Probe = z.looseObject({ httpGet: z.looseObject({ path: z.string(), port: z.union([z.string(), z.number()]) }) });
const Container = z.looseObject({
  name: z.string(),
  args: z.array(z.string()),
  ports: z.array(z.looseObject({ name: z.string().optional(), containerPort: z.number() })),
  env: z.array(
    z.looseObject({
      name: z.string(),
      value: z.string().optional(),
      valueFrom: z
        .looseObject({
          fieldRef: z.looseObject({ fieldPath: z.string() }).optional(),
          secretKeyRef: z.looseObject({ name: z.string(), key: z.string(), optional: z.boolean().optional() }).optional(),
        })
        .optional(),
    }),
  ),
  livenessProbe: Probe,
  readinessProbe: Probe,
  resources: z.looseObject({
    requests: z.looseObject({ cpu: z.string(), memory: z.string() }),
    limits: z.looseObject({ cpu: z.string(), memory: z.string() }),
  }),
  volumeMounts: z.array(z.looseObject({ name: z.string(), mountPath: z.string() })),
});
const Volume = z.looseObject({
  name: z.string(),
  configMap: z.looseObject({ name: z.string() }).optional(),
  emptyDir: z.looseObject({}).optional(),
});
const Deployment = z.looseObject({
  kind: z.literal('Deployment'),
  spec: z.looseObject({
    replicas: z.number(),
    selector: z.looseObject({ matchLabels: z.record(z.string(), z.string()) }),
    strategy: z.looseObject({
      type: z.literal('RollingUpdate'),
      rollingUpdate: z.looseObject({ maxSurge: z.union([z.number(), z.string()]), maxUnavailable: z.union([z.number(), z.string()]) }),
    }),
    template: z.looseObject({
      metadata: z.looseObject({ labels: z.record(z.string(), z.string()), annotations: z.record(z.string(), z.string()) }),
      spec: z.looseObject({
        terminationGracePeriodSeconds: z.number(),
        containers: z.array(Container).length(1),
        volumes: z.array(Volume),
      }),
    }),
  }),
});
const Manifest = z.looseObject({ apiVersion: z.string(), kind: z.string(), metadata: z.looseObject({ name: z.string() }) });

const manifests = readdirSync(join(DEPLOY, 'k8s'))
  .filter((name) => /\.ya?ml$/.test(name))
  .flatMap((name) => yamlDocuments(join(DEPLOY, 'k8s', name)))
  .map((doc) => ({ doc, meta: Manifest.parse(doc) }));
const ofKind = (kind: string) => manifests.filter((m) => m.meta.kind === kind);
const deployment = Deployment.parse(ofKind('Deployment')[0]?.doc);
const pod = deployment.spec.template;
const container = pod.spec.containers[0]!;
const POD_NAME = 'metadata.name';
/** Names of the Deployment's pods as Kubernetes makes them: <deployment>-<replicaset hash>-<suffix>. */
const podNames = Array.from({ length: deployment.spec.replicas }, (_, i) => `ethhook-7c9d5b8f6-${'bcdfg'[i % 5]}x2k${i}`);

/** The ConfigMap file the container's `--config` names, written out for loadConfig. */
const k8sConfig = once(() => {
  const path = flagValue(container.args, '--config');
  const mount = container.volumeMounts.find((m) => m.mountPath === (path === undefined ? '' : dirname(path)));
  const volume = pod.spec.volumes.find((v) => v.name === mount?.name);
  const configMap = ofKind('ConfigMap').find((m) => m.meta.metadata.name === volume?.configMap?.name);
  const data = z.looseObject({ data: z.record(z.string(), z.string()) }).parse(configMap?.doc).data[basename(path ?? '')];
  if (data === undefined) throw new Error(`the Deployment's --config ${path} is not a key of a ConfigMap it mounts`);
  const file = join(tmp, 'k8s-config.yaml');
  writeFileSync(file, data);
  return { file, data };
});

function podEnv(podName: string): Record<string, string> {
  const env: Record<string, string> = { ...image.env };
  for (const e of container.env) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.fieldRef?.fieldPath === POD_NAME) env[e.name] = podName;
    else if (e.valueFrom?.secretKeyRef !== undefined) env[e.name] = placeholderFor(e.name);
    else throw new Error(`${e.name}: unsupported env source ${JSON.stringify(e.valueFrom)}`);
  }
  return env;
}

const pods = once(() => podNames.map((name) => effectiveConfig(k8sConfig().file, podEnv(name))));
const resolvePort = (port: string | number) =>
  typeof port === 'number' ? port : container.ports.find((p) => p.name === port)?.containerPort;

describe('deploy/k8s: a Deployment of interchangeable cluster instances', () => {
  it('is a Deployment, not a StatefulSet: no per-pod identity, no volume claim', () => {
    expect(ofKind('Deployment')).toHaveLength(1);
    expect(ofKind('StatefulSet')).toEqual([]);
    expect(ofKind('PersistentVolumeClaim')).toEqual([]);
    expect(deployment.spec).not.toHaveProperty('volumeClaimTemplates');
    expect(deployment.spec.replicas).toBeGreaterThanOrEqual(2);
  });

  it('mounts config/cluster.example.yaml as its ConfigMap', () => {
    expect(parseDocument(k8sConfig().data).toJS()).toEqual(yamlFile(CLUSTER_EXAMPLE));
  });

  it('names each instance after its pod, and every pod config validates on the one PostgreSQL store', () => {
    expect(container.env.find((e) => e.name === 'ETHHOOK_NODE__ID')?.valueFrom?.fieldRef?.fieldPath).toBe(POD_NAME);
    expect(pods().map((c) => c.node.id)).toEqual(podNames);
    for (const c of pods()) {
      expect(c.store.kind).toBe('postgres');
      expect(c.store).toEqual(pods()[0]!.store);
    }
  });

  it('keeps no state in the pod: no volume at node.dataDir, only the ConfigMap and an emptyDir /tmp', () => {
    for (const c of pods()) {
      const atDataDir = container.volumeMounts.filter(
        (m) => c.node.dataDir === m.mountPath || c.node.dataDir.startsWith(`${m.mountPath}/`),
      );
      expect(atDataDir).toEqual([]);
    }
    for (const v of pod.spec.volumes)
      expect(
        Object.keys(v).filter((k) => k !== 'name'),
        v.name,
      ).toEqual([v.configMap ? 'configMap' : 'emptyDir']);
    expect(container.volumeMounts.find((m) => m.mountPath === '/tmp')).toBeDefined();
  });

  it('takes the store url, the admin tokens and the master key from one Secret', () => {
    const refs = container.env.filter((e) => e.valueFrom?.secretKeyRef !== undefined);
    const required = ['ETHHOOK_STORE__URL', 'ETHHOOK_ADMIN_TOKENS', 'ETHHOOK_MASTER_KEY'];
    expect(refs.map((e) => e.name)).toEqual(expect.arrayContaining(required));
    expect(new Set(refs.map((e) => e.valueFrom!.secretKeyRef!.name)).size).toBe(1);
    for (const e of refs.filter((ref) => required.includes(ref.name))) expect(e.valueFrom!.secretKeyRef!.optional, e.name).not.toBe(true);
    for (const c of pods()) {
      expect(c.admin.tokens.map((t) => t.role)).toEqual(['read', 'operate']);
      expect(c.security.generateMasterKey).toBe(false);
    }
    // Without the Secret's url the configuration names what is missing.
    const { ETHHOOK_STORE__URL: _url, ...withoutUrl } = podEnv(podNames[0]!);
    expect(() => loadConfig({ file: k8sConfig().file, env: withoutUrl })).toThrow(/store\.url/);
  });

  it('gives a pod longer to stop (release its leases and claims, stop its tree) than node.shutdownDeadlineMs', () => {
    for (const c of pods()) expect(pod.spec.terminationGracePeriodSeconds * 1000).toBeGreaterThan(c.node.shutdownDeadlineMs);
  });

  it('rolls out without going below its replicas: a new pod is ready before an old one drains', () => {
    expect(deployment.spec.strategy.rollingUpdate.maxUnavailable).toBe(0);
    expect(Number(deployment.spec.strategy.rollingUpdate.maxSurge)).toBeGreaterThan(0);
  });

  it('probes /health and /ready, and scrapes /metrics, on the admin API address', () => {
    for (const c of pods()) {
      expect(c.admin.host).toBe('0.0.0.0');
      expect(container.livenessProbe.httpGet.path).toBe('/health');
      expect(container.readinessProbe.httpGet.path).toBe('/ready');
      expect(resolvePort(container.livenessProbe.httpGet.port)).toBe(c.admin.port);
      expect(resolvePort(container.readinessProbe.httpGet.port)).toBe(c.admin.port);
      expect(pod.metadata.annotations).toMatchObject({
        'prometheus.io/scrape': 'true',
        'prometheus.io/path': '/metrics',
        'prometheus.io/port': String(c.admin.port),
      });
    }
  });

  it('is served by a Service balancing over its ready pods, on the admin port', () => {
    const services = ofKind('Service').map((m) =>
      z
        .looseObject({
          spec: z.looseObject({
            clusterIP: z.string().optional(),
            publishNotReadyAddresses: z.boolean().optional(),
            selector: z.record(z.string(), z.string()),
            ports: z.array(z.looseObject({ port: z.number(), targetPort: z.union([z.string(), z.number()]) })),
          }),
        })
        .parse(m.doc),
    );
    expect(services).toHaveLength(1);
    const service = services[0]!.spec;
    expect(service.clusterIP).not.toBe('None');
    expect(service.publishNotReadyAddresses ?? false).toBe(false);
    expect(pod.metadata.labels).toMatchObject(service.selector);
    expect(pod.metadata.labels).toMatchObject(deployment.spec.selector.matchLabels);
    expect(service.ports.map((p) => resolvePort(p.targetPort))).toEqual([pods()[0]!.admin.port]);
  });

  it('lets voluntary disruptions take down fewer pods than it runs, so some instance always ingests; a not-ready one whatever the budget', () => {
    const budgets = ofKind('PodDisruptionBudget').map((m) =>
      z
        .looseObject({
          apiVersion: z.literal('policy/v1'),
          spec: z.strictObject({
            maxUnavailable: z.number().optional(),
            minAvailable: z.number().optional(),
            unhealthyPodEvictionPolicy: z.string(),
            selector: z.strictObject({ matchLabels: z.record(z.string(), z.string()) }),
          }),
        })
        .parse(m.doc),
    );
    expect(budgets).toHaveLength(1);
    const budget = budgets[0]!.spec;
    const mayEvict = budget.maxUnavailable ?? deployment.spec.replicas - budget.minAvailable!;
    expect(mayEvict).toBeGreaterThan(0);
    expect(mayEvict).toBeLessThan(deployment.spec.replicas);
    expect(budget.unhealthyPodEvictionPolicy).toBe('AlwaysAllow');
    expect(pod.metadata.labels).toMatchObject(budget.selector.matchLabels);
    expect(budget.selector.matchLabels).toEqual(deployment.spec.selector.matchLabels);
  });

  it('has resource requests and limits', () => {
    expect(Object.keys(container.resources.requests)).toEqual(expect.arrayContaining(['cpu', 'memory']));
    expect(Object.keys(container.resources.limits)).toEqual(expect.arrayContaining(['cpu', 'memory']));
  });
});

// ---- the PostgreSQL example ------------------------------------------------------------------------

describe('deploy/postgres-example.yaml', () => {
  const file = join(DEPLOY, 'postgres-example.yaml');
  const docs = once(() => yamlDocuments(file).map((doc) => ({ doc, meta: Manifest.parse(doc) })));

  it('says it is an example, and stays out of `kubectl apply -f deploy/k8s/`', () => {
    expect(readFileSync(file, 'utf8')).toMatch(/^# AN EXAMPLE FOR TRYING ethhook ON KUBERNETES, NOT A PRODUCTION DATABASE/);
    expect(dirname(file)).not.toBe(join(DEPLOY, 'k8s'));
  });

  it("serves the database its header's store-url names, on PostgreSQL 15 or newer", () => {
    const set = z
      .looseObject({
        spec: z.looseObject({
          template: z.looseObject({
            spec: z.looseObject({
              containers: z.array(z.looseObject({ image: z.string(), env: Container.shape.env, ports: Container.shape.ports })).length(1),
            }),
          }),
        }),
      })
      .parse(docs().find((d) => d.meta.kind === 'StatefulSet')?.doc);
    const pg = set.spec.template.spec.containers[0]!;
    expect(postgresMajor(pg.image)).toBeGreaterThanOrEqual(15);
    const env = Object.fromEntries(pg.env.map((e) => [e.name, e.value]));
    const service = docs().find((d) => d.meta.kind === 'Service')!;
    const servicePort = z.looseObject({ spec: z.looseObject({ ports: z.array(z.looseObject({ port: z.number() })) }) }).parse(service.doc)
      .spec.ports[0]!;
    const url = /postgres:\/\/(\w+):<that password>@([\w-]+):(\d+)\/(\w+)/.exec(readFileSync(file, 'utf8'));
    expect(url?.slice(1)).toEqual([env.POSTGRES_USER, service.meta.metadata.name, String(servicePort.port), env.POSTGRES_DB]);
    expect(pg.ports[0]!.containerPort).toBe(5432);
  });
});

// ---- the Prometheus scrape job ---------------------------------------------------------------------

const RelabelRule = z.strictObject({
  source_labels: z.array(z.string()).default([]),
  separator: z.string().default(';'),
  regex: z.string().default('(.*)'),
  replacement: z.string().default('$1'),
  target_label: z.string().optional(),
  action: z.enum(['replace', 'keep', 'drop']).default('replace'),
});
const ScrapeConfig = z.strictObject({
  scrape_configs: z
    .array(
      z.looseObject({
        job_name: z.string(),
        metrics_path: z.string(),
        authorization: z.strictObject({ type: z.literal('Bearer'), credentials_file: z.string() }),
        kubernetes_sd_configs: z.array(z.looseObject({ role: z.literal('pod') })),
        relabel_configs: z.array(RelabelRule),
      }),
    )
    .length(1),
});

/** Prometheus' relabelling of one discovered target (anchored regexes, `$1` replacements); undefined when dropped. */
function relabel(rules: z.infer<typeof RelabelRule>[], target: Record<string, string>): Record<string, string> | undefined {
  const labels = { ...target };
  for (const rule of rules) {
    const value = rule.source_labels.map((l) => labels[l] ?? '').join(rule.separator);
    const regex = new RegExp(`^(?:${rule.regex})$`);
    const matches = regex.test(value);
    if (rule.action === 'keep' && !matches) return undefined;
    if (rule.action === 'drop' && matches) return undefined;
    if (rule.action === 'replace' && matches && rule.target_label !== undefined)
      labels[rule.target_label] = value.replace(regex, rule.replacement);
  }
  return labels;
}

/** What kubernetes_sd (role pod) discovers for the Deployment's pod `name` at `ip`, before relabelling. */
function discoveredPod(
  name: string,
  ip: string,
  podLabels: Record<string, string>,
  replicaSet = 'ethhook-7c9d5b8f6',
): Record<string, string> {
  const meta = (prefix: string, values: Record<string, string>) =>
    Object.fromEntries(Object.entries(values).map(([k, v]) => [`${prefix}${k.replace(/[^a-zA-Z0-9_]/g, '_')}`, v]));
  return {
    __address__: `${ip}:${container.ports[0]!.containerPort}`,
    __metrics_path__: '/metrics',
    __meta_kubernetes_namespace: 'ethhook',
    __meta_kubernetes_pod_name: name,
    __meta_kubernetes_pod_controller_kind: 'ReplicaSet',
    __meta_kubernetes_pod_controller_name: replicaSet,
    ...meta('__meta_kubernetes_pod_label_', podLabels),
    ...meta('__meta_kubernetes_pod_annotation_', pod.metadata.annotations),
  };
}

describe('deploy/prometheus-scrape.yaml', () => {
  const job = once(() => ScrapeConfig.parse(yamlFile(join(DEPLOY, 'prometheus-scrape.yaml'))).scrape_configs[0]!);

  it('sends a bearer token read from a file, as /metrics requires', () => {
    expect(job().authorization.credentials_file).toMatch(/^\//);
  });

  it('scrapes each pod on its admin port and /metrics, labelled cluster namespace/app and instance the pod name (its node.id)', () => {
    const target = relabel(job().relabel_configs, discoveredPod(podNames[1]!, '10.1.2.3', pod.metadata.labels));
    expect(target).toMatchObject({
      __address__: `10.1.2.3:${pods()[1]!.admin.port}`,
      __metrics_path__: '/metrics',
      cluster: 'ethhook/ethhook',
      instance: podNames[1],
    });
    // instance_up{peer} names instances by node.id: the same name as the target's instance label.
    expect(target!.instance).toBe(pods()[1]!.node.id);
  });

  it('keeps the pods of two ReplicaSets (a rollout in progress) in one cluster', () => {
    const before = relabel(job().relabel_configs, discoveredPod(podNames[0]!, '10.1.2.3', pod.metadata.labels, 'ethhook-7c9d5b8f6'));
    const after = relabel(
      job().relabel_configs,
      discoveredPod('ethhook-5f4b7d9c8-q7wzt', '10.1.2.4', pod.metadata.labels, 'ethhook-5f4b7d9c8'),
    );
    expect(before!.cluster).toBe(after!.cluster);
  });

  it('leaves out other pods of the namespace', () => {
    expect(relabel(job().relabel_configs, discoveredPod('other-0', '10.1.2.4', { 'app.kubernetes.io/name': 'other' }))).toBeUndefined();
  });
});

// ---- the image, the example, the docs --------------------------------------------------------------

describe('deploy/Dockerfile', () => {
  it('runs bin/ethhook.mjs as a non-root user, with node.dataDir on its volume and the admin port exposed', () => {
    expect(image.steps[0]).toEqual({ op: 'FROM', args: expect.stringMatching(/^node:20(\.[\d.]+)?-(bookworm-)?slim$/) });
    expect(image.user).not.toMatch(/^(root|0)$/);
    expect(image.entrypoint).toEqual(['node', '--max-semi-space-size=4', 'bin/ethhook.mjs']);
    // The environment `npm start` gives the node (glibc malloc's settings, read only at exec) is the image's too.
    expect(Object.keys(NPM_START.env).length).toBeGreaterThan(0);
    expect(image.env).toMatchObject(NPM_START.env);
    expect(existsSync(join(ROOT, image.entrypoint.at(-1)!))).toBe(true);
    expect(image.volume).toBe(image.env.ETHHOOK_NODE__DATA_DIR);
    expect(image.healthcheck).toMatch(/'\/health'/);
    expect(image.steps.some((s) => s.op === 'RUN' && s.args.includes('npm ci --omit=dev'))).toBe(true);
    // The default command is what compose and the Deployment run, and validates with their configs.
    expect(image.cmd).toEqual(instances()[0]!.service.command);
    expect(image.cmd).toEqual(container.args);
    for (const c of [...instances().map((i) => i.config), ...pods()]) {
      expect(image.expose).toBe(c.admin.port);
      expect(c.node.dataDir).toBe(image.env.ETHHOOK_NODE__DATA_DIR);
    }
  });

  it('copies only files that exist and that .dockerignore lets into the build context', () => {
    const allowed = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .filter((line) => line.startsWith('!'))
      .map((line) => line.slice(1).replace(/\/$/, ''));
    expect(image.copies.length).toBeGreaterThan(0);
    for (const source of image.copies) {
      expect(existsSync(join(ROOT, source)), source).toBe(true);
      expect(allowed, source).toContain(source.replace(/\/$/, ''));
    }
  });
});

describe('deploy/Dockerfile: the bundle', () => {
  // The image bundles the sources while it is built (bin/bundle.mjs), from the files it copied and
  // nothing else: the same step, run here in a directory holding only what the COPY steps put in the
  // image (node_modules linked from this checkout, as `npm ci` installs it there, dev packages too,
  // which the image leaves out: the next test), builds the bundle.
  it('builds from the files the image copies', () => {
    const app = mkdtempSync(join(tmp, 'app-'));
    for (const { sources, to } of image.copySteps) {
      // Docker's rules: into a destination ending in `/` each source keeps its name; else it is renamed.
      for (const source of sources)
        cpSync(join(ROOT, source), join(app, to, to.endsWith('/') ? basename(source) : ''), { recursive: true });
    }
    mkdirSync(join(app, 'node_modules'));
    for (const entry of readdirSync(join(ROOT, 'node_modules'))) {
      if (entry !== '.cache') symlinkSync(join(ROOT, 'node_modules', entry), join(app, 'node_modules', entry));
    }
    const step = image.steps.find((s) => s.op === 'RUN' && s.args.includes("bundle('src/cli.ts'"));
    expect(step, 'a RUN step that bundles src/cli.ts').toBeDefined();
    const command = step!.args.split(' && ')[0]!;
    execFileSync('sh', ['-c', command], { cwd: app, stdio: 'pipe' });
    const built = readdirSync(join(app, 'node_modules', '.cache', 'ethhook')).filter((f) => /^cli-[0-9a-f]{16}\.mjs$/.test(f));
    expect(built).toHaveLength(1);
  });

  it('bundles in only packages the image installs (dependencies, not devDependencies)', async () => {
    const { BUNDLED_PACKAGES } = (await import(join(ROOT, 'bin', 'bundle.mjs'))) as { BUNDLED_PACKAGES: Set<string> };
    const { dependencies } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    expect(BUNDLED_PACKAGES.size).toBeGreaterThan(0);
    for (const name of BUNDLED_PACKAGES) expect(Object.keys(dependencies), name).toContain(name);
  });
});

describe('config/cluster.example.yaml', () => {
  it('validates with the store url from the environment, and names it when missing, with real chains and governance', () => {
    const alone = effectiveConfig(CLUSTER_EXAMPLE, { ETHHOOK_STORE__URL: placeholderFor('ETHHOOK_STORE__URL') });
    expect(alone.store).toMatchObject({ kind: 'postgres', url: placeholderFor('ETHHOOK_STORE__URL') });
    expect(() => loadConfig({ file: CLUSTER_EXAMPLE, env: {} })).toThrow(ConfigError);
    expect(() => loadConfig({ file: CLUSTER_EXAMPLE, env: {} })).toThrow(/store\.url/);
    expect(alone.devChain.enabled).toBe(false);
    expect(alone.chains.length).toBeGreaterThan(0);
    expect(alone.governance.url).toBeDefined();
    expect(alone.security).toMatchObject({ allowPrivateTargets: false, generateMasterKey: false });
  });
});

describe('the YAML and the docs', () => {
  it('parses every YAML file under deploy/', () => {
    const files = yamlFilesUnder(DEPLOY)
      .map((f) => relative(DEPLOY, f))
      .sort();
    expect(files).toEqual([
      'cluster.yaml',
      'compose.yaml',
      'k8s/configmap.yaml',
      'k8s/deployment.yaml',
      'k8s/poddisruptionbudget.yaml',
      'k8s/service.yaml',
      'postgres-example.yaml',
      'prometheus-scrape.yaml',
    ]);
    for (const f of files) expect(yamlDocuments(join(DEPLOY, f)).length).toBeGreaterThan(0);
  });

  it('documents in deploy/README.md every variable the image, compose and the Deployment set or read', () => {
    const readme = readFileSync(join(DEPLOY, 'README.md'), 'utf8');
    const variables = new Set([
      ...Object.keys(image.env),
      ...instances().flatMap((i) => Object.keys(serviceEnv(i.service))),
      ...composeHostVariables,
      ...container.env.map((e) => e.name),
    ]);
    expect(variables.size).toBeGreaterThan(5);
    for (const v of variables) expect(readme, v).toContain(v);
  });
});
