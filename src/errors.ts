/**
 * The error catalog: every `ETHHOOK_ERR_*` code the node can log or answer with, gathered from the
 * layers that define them. Operators search logs and runbooks by these codes; a code, once released,
 * keeps its meaning. `ethhook errors` prints the table.
 */
import { adminErrorCodes } from './actors/admin/errors.ts';
import { backfillErrorCodes } from './actors/backfill/errors.ts';
import { chainErrorCodes } from './actors/chain-listener/errors.ts';
import { clusterErrorCodes } from './cluster/errors.ts';
import { delivererErrorCodes } from './actors/deliverer/errors.ts';
import { governanceErrorCodes } from './actors/governance/errors.ts';
import { matcherErrorCodes } from './actors/matcher/errors.ts';
import { configErrorCodes } from './config/errors.ts';
import { kernelErrorCodes, type ErrorCodeInfo } from './runtime/errors.ts';
import { storeErrorCodes } from './store/errors.ts';
import { streamErrorCodes } from './streams/errors.ts';

export { EthhookError, isEthhookError, describeError } from './runtime/errors.ts';

const groups = {
  kernel: kernelErrorCodes,
  config: configErrorCodes,
  store: storeErrorCodes,
  cluster: clusterErrorCodes,
  admin: adminErrorCodes,
  'chain-listener': chainErrorCodes,
  matcher: matcherErrorCodes,
  backfill: backfillErrorCodes,
  deliverer: delivererErrorCodes,
  governance: governanceErrorCodes,
  streams: streamErrorCodes,
} as const;

export interface CatalogEntry extends ErrorCodeInfo {
  code: string;
  layer: keyof typeof groups;
}

/** All codes, each once; throws at load if two layers claim the same code. */
export const ERROR_CATALOG: readonly CatalogEntry[] = (() => {
  const seen = new Map<string, string>();
  const out: CatalogEntry[] = [];
  for (const [layer, codes] of Object.entries(groups) as [keyof typeof groups, Record<string, ErrorCodeInfo>][]) {
    for (const [code, info] of Object.entries(codes)) {
      const other = seen.get(code);
      if (other) throw new Error(`error code ${code} is defined by both ${other} and ${layer}`);
      seen.set(code, layer);
      out.push({ code, layer, ...info });
    }
  }
  return out;
})();

export function errorInfo(code: string): CatalogEntry | undefined {
  return ERROR_CATALOG.find((e) => e.code === code);
}
