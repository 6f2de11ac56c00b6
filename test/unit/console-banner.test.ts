// The demo's banner names the operator console and, when the node generated its admin token, the token
// to sign in with (the banner on stderr is the one place it is shown; the JSON log never has it).
import { describe, expect, it } from 'vitest';
import { demoBanner, type NodeWhereabouts } from '../../src/demo/banner.ts';

const where: NodeWhereabouts = {
  admin: 'http://127.0.0.1:8080',
  metrics: 'http://127.0.0.1:8080/metrics',
  console: 'http://127.0.0.1:8080/console',
  streams: { ws: 'ws://127.0.0.1:8080/v1/ws/events', sse: 'http://127.0.0.1:8080/v1/sse/events' },
  adminTokenFile: 'data/admin-token',
  anvil: null,
  governance: null,
  demoReceiver: null,
};

describe('the demo banner', () => {
  it('gives the console URL with the generated token to sign in with', () => {
    const banner = demoBanner(where, 'tok_generated');
    expect(banner).toMatch(/console\s+http:\/\/127\.0\.0\.1:8080\/console {2}\(sign in with the admin token tok_generated\)/);
  });

  it('gives the console URL alone when the tokens are the operator’s own', () => {
    const banner = demoBanner({ ...where, adminTokenFile: null });
    expect(banner).toMatch(/console\s+http:\/\/127\.0\.0\.1:8080\/console\n/);
    expect(banner).not.toContain('sign in with');
  });
});
