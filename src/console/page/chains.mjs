/**
 * One card per chain: head, processed, safe and finalized heights, lag, the provider in use, reorgs and
 * their deepest bucket, whether this instance ingests it; and its last 15 minutes (head and processed,
 * lag) from the series.
 */
import { Chart } from './chart.mjs';
import { html } from './html.mjs';
import { num } from './format.mjs';

export function Chains({ chains, series }) {
  return html`<section class="panel" id="chains">
    <h2>Chains</h2>
    ${chains.length === 0 ? html`<p class="muted">This node follows no chain.</p>` : null}
    <div class="cards">${chains.map((c) => html`<${ChainCard} key=${c.chainId} chain=${c} series=${series} />`)}</div>
  </section>`;
}

function ChainCard({ chain, series }) {
  const s = chain.status;
  const col = (part) => series?.series[`chain.${chain.name}.${part}`] ?? [];
  const provider = s ? `${s.provider ?? 'none'} (${s.transport}${s.connected ? '' : ', disconnected'})` : null;
  return html`<article class="card" data-chain=${chain.chainId}>
    <header>
      <strong>${chain.name}</strong> <span class="muted">chain ${chain.chainId}</span>
      ${s && !s.ingesting ? html`<span class="badge badge-idle">following only</span>` : null}
      ${s?.failed ? html`<span class="badge badge-failed">${s.failed}</span>` : null}
      ${chain.unavailable ? html`<span class="badge badge-stopped">${chain.unavailable}</span>` : null}
    </header>
    <dl class="facts">
      <div>
        <dt>head</dt>
        <dd data-fact="head">${num(s?.head)}</dd>
      </div>
      <div>
        <dt>processed</dt>
        <dd data-fact="processed">${num(s?.processed)}</dd>
      </div>
      <div>
        <dt>safe</dt>
        <dd>${num(chain.safe || null)}</dd>
      </div>
      <div>
        <dt>finalized</dt>
        <dd>${num(chain.finalized || null)}</dd>
      </div>
      <div>
        <dt>lag</dt>
        <dd class=${chain.lag > 10 ? 'hot' : ''}>${num(chain.lag)}</dd>
      </div>
      <div>
        <dt>reorgs</dt>
        <dd>
          ${num(chain.reorgs.count)}${chain.reorgs.deepest !== null ? html` <span class="muted">≤ ${chain.reorgs.deepest} deep</span>` : null}
        </dd>
      </div>
    </dl>
    <p class="small">provider ${provider ?? html`<span class="muted">–</span>`}</p>
    ${
      s?.providers?.length > 1
        ? html`<p class="small muted">
            ${s.providers.map((p) => `${p.name}: ${p.health}${p.lag > 0 ? ` (${p.lag} behind)` : ''}`).join(' · ')}
          </p>`
        : null
    }
    <div class="chain-charts">
      <${Chart}
        title="head / processed"
        t=${series?.t}
        windowMs=${series?.windowMs}
        lines=${[
          { label: 'head', values: col('head') },
          { label: 'processed', values: col('processed') },
        ]}
      />
      <${Chart} title="lag (blocks)" t=${series?.t} windowMs=${series?.windowMs} lines=${[{ label: 'lag', values: col('lag') }]} />
    </div>
  </article>`;
}
