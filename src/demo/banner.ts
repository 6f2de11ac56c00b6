/**
 * The few lines a newcomer reads on stderr when the demo node is up: where everything is and how to
 * look at it. The same facts are in the `node running` JSON log line; this is the human version, and
 * only it shows the generated admin token itself (`adminToken`: the operator console asks for it). The
 * JSON log never carries a token.
 */

export interface NodeWhereabouts {
  admin: string | null;
  metrics: string | null;
  /** The operator console's page (src/console/). */
  console: string | null;
  streams: { ws: string; sse: string } | null;
  adminTokenFile: string | null;
  anvil: { http: string; ws: string; contract: string } | null;
  governance: string | null;
  demoReceiver: string | null;
}

export function demoBanner(where: NodeWhereabouts, adminToken?: string): string {
  const token = where.adminTokenFile ? `$(cat ${where.adminTokenFile})` : '<your token>';
  const rows: Array<[string, string | null | undefined]> = [
    ['admin API', where.admin],
    ['console', where.console && (adminToken ? `${where.console}  (sign in with the admin token ${adminToken})` : where.console)],
    ['metrics', where.metrics],
    ['live events (WS)', where.streams?.ws],
    ['live events (SSE)', where.streams?.sse],
    ['admin token', where.adminTokenFile],
    ['anvil (dev chain)', where.anvil && `${where.anvil.http}  (contract ${where.anvil.contract})`],
    ['governance server', where.governance],
    ['demo receiver', where.demoReceiver],
  ];
  const lines = rows.filter(([, v]) => v).map(([k, v]) => `  ${k.padEnd(18)} ${v}`);
  const tryIt = where.admin
    ? [
        '',
        '  try:',
        `    curl -H "Authorization: Bearer ${token}" ${where.metrics}`,
        `    curl -N -H "Authorization: Bearer ${token}" "${where.streams?.sse}?events=all"`,
      ]
    : [];
  return [
    '',
    'ethhook is running — Tick events of the dev chain go as signed webhooks to the demo receiver.',
    ...lines,
    ...tryIt,
    '  a "status" log line follows every few seconds; Ctrl-C stops everything.',
    '',
    '',
  ].join('\n');
}
