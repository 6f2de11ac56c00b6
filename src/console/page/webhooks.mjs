/**
 * Webhooks: totals, the last 15 minutes (delivery rate with the success/failure split, queue depth,
 * event-to-delivery latency p50/p95), the endpoints with their state, and for an operate token one
 * endpoint's recent attempts and the dead letters (GET /v1/endpoints/:id/attempts, GET /v1/dead-letters:
 * both reveal customer data, so a read token is told it may not see them).
 *
 * Actions (operate, each confirmed): pause, resume, enable an endpoint; rotate its secret (the new
 * secret is shown once); replay one dead letter, or an endpoint's dead letters since a time.
 */
import { useEffect, useState } from 'preact/hooks';
import { Chart } from './chart.mjs';
import { html } from './html.mjs';
import { ago, errorText, num, time } from './format.mjs';

export function Webhooks({ snapshot, series, can, act, api, selected, select }) {
  const w = snapshot.webhooks;
  const col = (name) => series?.series[`webhooks.${name}`] ?? [];
  const failed = Object.entries(w.deliveries)
    .filter(([status]) => status !== 'success')
    .reduce((n, [, v]) => n + v, 0);
  return html`<section class="panel" id="webhooks">
    <h2>Webhooks</h2>
    <div class="tiles">
      <div class="tile"><span>delivered</span><strong>${num(w.deliveries.success ?? 0)}</strong></div>
      <div class="tile"><span>failed attempts</span><strong class=${failed > 0 ? 'hot' : ''}>${num(failed)}</strong></div>
      <div class="tile"><span>queue</span><strong data-fact="queue">${num(w.queueDepth)}</strong></div>
      <div class="tile">
        <span>dead letters</span><strong class=${w.deadLetters > 0 ? 'hot' : ''} data-fact="dead-letters">${num(w.deadLetters)}</strong>
      </div>
    </div>
    <div class="charts">
      <${Chart}
        title="attempts per second"
        t=${series?.t}
        windowMs=${series?.windowMs}
        lines=${[
          { label: 'delivered', values: col('delivered') },
          { label: 'failed', values: col('failed') },
        ]}
      />
      <${Chart}
        title="queue depth / dead letters"
        t=${series?.t}
        windowMs=${series?.windowMs}
        lines=${[
          { label: 'queue', values: col('queue') },
          { label: 'dead letters', values: col('deadLetters') },
        ]}
      />
      <${Chart}
        title="event to delivery"
        unit="s"
        t=${series?.t}
        windowMs=${series?.windowMs}
        lines=${[
          { label: 'p50', values: col('latencyP50') },
          { label: 'p95', values: col('latencyP95') },
        ]}
      />
    </div>
    <${Endpoints} endpoints=${snapshot.endpoints} can=${can} act=${act} selected=${selected} select=${select} />
    ${
      can
        ? html`<${EndpointDetail} api=${api} endpointId=${selected} at=${snapshot.at} act=${act} />
            <${DeadLetters} api=${api} at=${snapshot.at} act=${act} />`
        : html`<p class="muted small">Attempts and dead letters carry customer data: they need an operate token.</p>`
    }
  </section>`;
}

function endpointState(e) {
  if (e.disabled) return { label: `disabled: ${e.disabled.reason}`, cls: 'failed' };
  if (e.paused) return { label: 'paused', cls: 'stopped' };
  if (e.breaker === 'open') return { label: 'breaker open', cls: 'restarting' };
  if (e.breaker === 'half-open') return { label: 'breaker half-open', cls: 'restarting' };
  return { label: 'active', cls: 'running' };
}

function Endpoints({ endpoints, can, act, selected, select }) {
  const action = (e, name, body, text) =>
    act({
      title: `${name[0].toUpperCase()}${name.slice(1)} endpoint ${e.id}?`,
      body: text,
      confirm: name,
      run: (api) => api.post(`/v1/endpoints/${encodeURIComponent(e.id)}/${name}`, body),
      done: `${name} ${e.id}: done`,
    });
  return html`<h3>Endpoints ${endpoints.truncated ? html`<span class="muted small">(the first ${endpoints.data.length})</span>` : null}</h3>
    <div class="scroll">
      <table class="endpoints">
        <thead>
          <tr>
            <th>Id</th>
            <th>Target</th>
            <th>State</th>
            <th>Failing</th>
            <th>Rate limit</th>
            ${can ? html`<th>Actions</th>` : null}
          </tr>
        </thead>
        <tbody>
          ${
            endpoints.data.length === 0
              ? html`<tr>
                  <td colspan="6" class="muted">No endpoints yet.</td>
                </tr>`
              : null
          }
          ${endpoints.data.map((e) => {
            const state = endpointState(e);
            return html`<tr key=${e.id} data-endpoint=${e.id} class=${selected === e.id ? 'selected' : ''}>
              <td>${can ? html`<a href="#" onClick=${(ev) => (ev.preventDefault(), select(e.id))}>${e.id}</a>` : e.id}</td>
              <td class="small">${e.url ?? e.origin}</td>
              <td><span class=${`badge badge-${state.cls}`}>${state.label}</span></td>
              <td>
                ${e.failing ? html`<span class="hot">${e.failing.failures} since ${ago(e.failing.since)}</span>` : html`<span class="muted">–</span>`}
              </td>
              <td>${e.rateLimitPerSec ? `${e.rateLimitPerSec}/s` : html`<span class="muted">–</span>`}</td>
              ${
                can
                  ? html`<td class="actions">
                      ${
                        e.paused
                          ? html`<button onClick=${() => action(e, 'resume', undefined, 'Its webhooks are sent again.')}>Resume</button>`
                          : html`<button
                              class="warn"
                              onClick=${() => action(e, 'pause', undefined, 'Its webhooks wait in the queue until it is resumed.')}
                            >
                              Pause
                            </button>`
                      }
                      ${
                        e.disabled || e.breaker !== 'closed'
                          ? html`<button
                              onClick=${() => action(e, 'enable', undefined, 'Clears its disabled state and closes its breaker.')}
                            >
                              Enable
                            </button>`
                          : null
                      }
                      <button
                        onClick=${() =>
                          act({
                            title: `Rotate the secret of ${e.id}?`,
                            body: 'A new signing secret is made; the old one keeps signing alongside for the overlap. The new secret is shown once.',
                            confirm: 'rotate',
                            run: (api) => api.post(`/v1/endpoints/${encodeURIComponent(e.id)}/rotate-secret`, {}),
                            secretOf: e.id,
                            done: `rotate ${e.id}: done`,
                          })}
                      >
                        Rotate secret
                      </button>
                    </td>`
                  : null
              }
            </tr>`;
          })}
        </tbody>
      </table>
    </div>`;
}

/** Follows the snapshot's `at`: re-read at every poll while shown. */
function usePolled(api, path, at) {
  const [state, setState] = useState({ data: null, error: null });
  useEffect(() => {
    if (path === null) return;
    let live = true;
    api.get(path).then(
      (answer) => live && setState({ data: answer.data, error: null }),
      (err) => live && setState((s) => ({ data: s.data, error: err })),
    );
    return () => (live = false);
  }, [path, at]);
  return path === null ? { data: null, error: null } : state;
}

function EndpointDetail({ api, endpointId, at, act }) {
  const [since, setSince] = useState('');
  const attempts = usePolled(api, endpointId === null ? null : `/v1/endpoints/${encodeURIComponent(endpointId)}/attempts?limit=20`, at);
  if (endpointId === null) return html`<p class="muted small">Choose an endpoint to see its recent attempts.</p>`;
  const replaySince = (ev) => {
    ev.preventDefault();
    const ms = since === '' ? undefined : Date.parse(since);
    act({
      title: `Replay the dead letters of ${endpointId}${ms === undefined ? '' : ` since ${new Date(ms).toLocaleString()}`}?`,
      body: 'Each goes back to the queue as a new delivery.',
      confirm: 'replay',
      run: (api) => api.post('/v1/dead-letters/replay', { endpointId, ...(ms === undefined ? {} : { since: ms }) }),
      done: `replay of ${endpointId}'s dead letters: done`,
    });
  };
  return html`<div class="detail" id="endpoint-detail">
    <h3>Attempts of ${endpointId}</h3>
    <form class="inline" onSubmit=${replaySince}>
      <label
        >dead letters since <input type="datetime-local" step="1" value=${since} onInput=${(ev) => setSince(ev.currentTarget.value)}
      /></label>
      <button type="submit">Replay since</button>
    </form>
    ${attempts.error ? html`<p class="hot">${errorText(attempts.error)}</p>` : null}
    <table>
      <thead>
        <tr>
          <th>At</th>
          <th>Job</th>
          <th>Attempt</th>
          <th>Status</th>
          <th>ms</th>
          <th>Error</th>
        </tr>
      </thead>
      <tbody>
        ${(attempts.data ?? []).map(
          (a) =>
            html`<tr>
              <td>${time(a.at)}</td>
              <td class="small">${a.jobId}</td>
              <td class="n">${a.attempt ?? '–'}</td>
              <td class=${a.status >= 200 && a.status < 300 ? '' : 'hot'}>${a.status ?? 'no answer'}</td>
              <td class="n">${Math.round(a.durationMs)}</td>
              <td class="small">${a.error ?? ''}</td>
            </tr>`,
        )}
      </tbody>
    </table>
  </div>`;
}

function DeadLetters({ api, at, act }) {
  const letters = usePolled(api, '/v1/dead-letters?limit=50', at);
  return html`<div class="detail" id="dead-letters">
    <h3>Dead letters</h3>
    ${letters.error ? html`<p class="hot">${errorText(letters.error)}</p>` : null}
    <table>
      <thead>
        <tr>
          <th>Id</th>
          <th>Endpoint</th>
          <th>Type</th>
          <th>Reason</th>
          <th>Attempts</th>
          <th>Dead since</th>
          <th></th>
        </tr>
      </thead>
      <tbody>
        ${
          (letters.data ?? []).length === 0
            ? html`<tr>
                <td colspan="7" class="muted">None.</td>
              </tr>`
            : null
        }
        ${(letters.data ?? []).map(
          (d) =>
            html`<tr key=${d.id} data-dead-letter=${d.id}>
              <td class="small">${d.id}</td>
              <td>${d.endpointId}</td>
              <td>${d.type}</td>
              <td>${d.reason}</td>
              <td class="n">${d.attempts}</td>
              <td>${ago(d.deadAt)}</td>
              <td class="actions">
                <button
                  onClick=${() =>
                    act({
                      title: `Replay dead letter ${d.id}?`,
                      body: `It goes back to the queue for ${d.endpointId} as a new delivery.`,
                      confirm: 'replay',
                      run: (api) => api.post(`/v1/dead-letters/${encodeURIComponent(d.id)}/replay`),
                      done: `replay ${d.id}: done`,
                    })}
                >
                  Replay
                </button>
              </td>
            </tr>`,
        )}
      </tbody>
    </table>
  </div>`;
}
