/**
 * The small cards: governance (connected, height, trusted keys, last error; Reconnect for an operate
 * token), streams (connections against their limits) and the cluster's instances with the chains each
 * ingests.
 */
import { html } from './html.mjs';
import { ago, num } from './format.mjs';
import { Bar } from './tree.mjs';

export function Governance({ governance, can, act }) {
  if (governance === null)
    return html`<article class="card" id="governance">
      <h3>Governance</h3>
      <p class="muted">No governance stream.</p>
    </article>`;
  const g = governance;
  return html`<article class="card" id="governance">
    <h3>Governance</h3>
    ${
      g.unavailable
        ? html`<p><span class="badge badge-stopped">${g.unavailable}</span></p>`
        : html`<dl class="facts">
              <div>
                <dt>connected</dt>
                <dd><span class=${`badge badge-${g.connected ? 'running' : 'stopped'}`}>${g.connected ? 'yes' : 'no'}</span></dd>
              </div>
              <div>
                <dt>height</dt>
                <dd>${num(g.height)}</dd>
              </div>
              <div>
                <dt>trusted keys</dt>
                <dd title=${g.trustedKeys.join(', ')}>${g.trustedKeys.length}</dd>
              </div>
            </dl>
            ${g.lastError ? html`<p class="small hot">last error: ${g.lastError}</p>` : null}`
    }
    ${
      can
        ? html`<button
            onClick=${() =>
              act({
                title: 'Reconnect the governance stream?',
                body: 'The connection is dropped and made again now.',
                confirm: 'reconnect',
                run: (api) => api.post('/admin/governance/reconnect'),
                done: 'governance: reconnect requested',
              })}
          >
            Reconnect
          </button>`
        : null
    }
  </article>`;
}

export function Streams({ streams }) {
  return html`<article class="card" id="streams">
    <h3>Streams</h3>
    <dl class="facts">
      <div>
        <dt>WebSocket</dt>
        <dd><${Bar} size=${streams.websocket.connections} capacity=${streams.websocket.max} /></dd>
      </div>
      <div>
        <dt>SSE</dt>
        <dd><${Bar} size=${streams.sse.connections} capacity=${streams.sse.max} /></dd>
      </div>
    </dl>
  </article>`;
}

export function Cluster({ cluster, chains }) {
  const chainName = (id) => chains.find((c) => String(c.chainId) === String(id))?.name ?? id;
  return html`<article class="card wide" id="cluster">
    <h3>Cluster <span class="muted small">this instance: ${cluster.self}</span></h3>
    <table>
      <thead>
        <tr>
          <th>Instance</th>
          <th>Version</th>
          <th>Live</th>
          <th>Ingests</th>
          <th>Heights</th>
          <th>Claims</th>
          <th>Heartbeat</th>
        </tr>
      </thead>
      <tbody>
        ${cluster.instances.map(
          (i) =>
            html`<tr key=${i.id}>
              <td>${i.id}${i.id === cluster.self ? html` <span class="muted">(this)</span>` : null}</td>
              <td>${i.version}</td>
              <td><span class=${`badge badge-${i.live ? 'running' : 'stopped'}`}>${i.live ? 'live' : 'gone'}</span></td>
              <td>
                ${i.leases.map((l) => (l.startsWith('chain:') ? chainName(l.slice(6)) : l)).join(', ') || html`<span class="muted">–</span>`}
              </td>
              <td>
                ${
                  Object.entries(i.heights)
                    .map(([id, h]) => `${chainName(id)} ${num(h)}`)
                    .join(' · ') || html`<span class="muted">–</span>`
                }
              </td>
              <td class="n">${num(i.claims)}</td>
              <td>${ago(i.heartbeatAt)}</td>
            </tr>`,
        )}
      </tbody>
    </table>
  </article>`;
}
