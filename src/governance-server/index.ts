/** The reference governance server: its API (server.ts), key files (keygen.ts) and command line (main.ts). */
export { startGovernanceServer, loadSigningKey, type GovernanceServer, type GovernanceServerOptions } from './server.ts';
export { generateKeyFiles, type GeneratedKey } from './keygen.ts';
export { runGovernanceServe, GOVERNANCE_SERVE_USAGE } from './main.ts';
