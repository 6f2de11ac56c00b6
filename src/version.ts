/** The ethhook version this code is (package.json's `version`): for `--version` and a cluster's instance list. */
import { readFileSync } from 'node:fs';
import { sourcePath } from './runtime/source-dir.ts';

let cached: string | undefined;

export function ethhookVersion(): string {
  cached ??= (JSON.parse(readFileSync(sourcePath('../package.json'), 'utf8')) as { version: string }).version;
  return cached;
}
