/**
 * The supervision tree as a table of indented rows, one per actor (GET /admin/console/snapshot's tree):
 * state, incarnation, placement (with the pid of an actor placed in a process of its own), mailbox size against capacity as a bar, restarts by reason,
 * panics with the latest one's message (clipped; whole on hover), the latest restart's reason and dead
 * letters by reason. Stopped, restarting, failed and
 * storming actors are marked (`row-alert`). An operate token gets Restart, Stop and Start; Stop is not
 * offered for the admin actor and the supervisors above it (the API refuses: it would lock the console
 * out).
 */
import { html } from './html.mjs';
import { ago, byReason, num } from './format.mjs';

const ALERT_STATES = new Set(['stopped', 'stopping', 'restarting', 'failed']);
/** A panic's message as the row shows it: its first 60 characters. */
const clip = (message) => (message.length > 60 ? `${message.slice(0, 59)}…` : message);

export function Tree({ root, can, act }) {
  if (!root)
    return html`<section class="panel">
      <h2>Supervision tree</h2>
      <p class="muted">The node is starting…</p>
    </section>`;
  const rows = [];
  const adminPath = findPath(root, 'admin');
  const walk = (node, depth) => {
    rows.push(html`<${ActorRow} key=${node.path} node=${node} depth=${depth} can=${can} act=${act} adminPath=${adminPath} />`);
    for (const child of node.children ?? []) walk(child, depth + 1);
  };
  walk(root, 0);
  return html`<section class="panel" id="tree">
    <h2>Supervision tree</h2>
    <div class="scroll">
      <table class="tree">
        <thead>
          <tr>
            <th>Actor</th>
            <th>State</th>
            <th title="incarnation: 1, +1 per restart">Inc.</th>
            <th>Placement</th>
            <th>Mailbox</th>
            <th>Restarts</th>
            <th>Panics</th>
            <th>Last restart</th>
            <th>Dead letters</th>
            ${can ? html`<th>Actions</th>` : null}
          </tr>
        </thead>
        <tbody>
          ${rows}
        </tbody>
      </table>
    </div>
  </section>`;
}

function ActorRow({ node, depth, can, act, adminPath }) {
  const alert = ALERT_STATES.has(node.state) || node.storming;
  const state = node.storming ? `${node.state} · storming` : node.state;
  const lockout = adminPath !== null && (node.path === adminPath || node.path === '/' || adminPath.startsWith(`${node.path}/`));
  const running = node.state === 'running';
  const ask = (action) =>
    act({
      title: `${action[0].toUpperCase()}${action.slice(1)} ${node.path}?`,
      body:
        action === 'stop'
          ? 'It stays stopped, its mailbox filling, until someone starts it.'
          : action === 'restart'
            ? 'Its behaviour is built anew; queued messages stay in its mailbox.'
            : 'It starts with its mailbox as it is.',
      confirm: action,
      run: (api) => api.post(`/admin/actors/${action}`, { actor: node.path }),
      done: `${action} ${node.path}: done`,
    });
  return html`<tr
    class=${`actor state-${node.state}${alert ? ' row-alert' : ''}`}
    data-actor=${node.path}
    data-state=${node.state}
    data-incarnation=${node.incarnation}
    data-mailbox=${node.mailbox?.size ?? ''}
  >
    <td class="name" style=${`padding-left: ${0.5 + depth * 1.1}rem`}>
      <span class=${node.kind === 'supervisor' ? 'sup' : 'worker'}>${node.name}</span>
    </td>
    <td><span class=${`badge badge-${node.storming ? 'storming' : node.state}`}>${state}</span></td>
    <td class="n">${node.incarnation}</td>
    <td>${node.placement}${node.placement !== 'local' && node.pid !== null ? html` <span class="muted">pid ${node.pid}</span>` : null}</td>
    <td>
      ${node.mailbox ? html`<${Bar} size=${node.mailbox.size} capacity=${node.mailbox.capacity} />` : html`<span class="muted">–</span>`}
    </td>
    <td title=${byReason(node.restartsByReason)}>
      ${num(node.restarts)}${node.restarts > 0 ? html` <span class="muted small">(${reasons(node.restartsByReason)})</span>` : null}
    </td>
    <td class="n" title=${node.lastPanic?.message ?? ''}>
      ${num(node.panics)}
      ${node.lastPanic ? html`<div class="muted small panic" data-panic>${clip(node.lastPanic.message)} · ${ago(node.lastPanic.at)}</div>` : null}
    </td>
    <td>
      ${
        node.lastRestartReason === null
          ? html`<span class="muted">–</span>`
          : html`${node.lastRestartReason} <span class="muted small">${ago(node.lastRestartAt)}</span>`
      }
    </td>
    <td>${byReason(node.deadLetters) || html`<span class="muted">–</span>`}</td>
    ${
      can
        ? html`<td class="actions">
            ${running || node.state === 'restarting' ? html`<button onClick=${() => ask('restart')}>Restart</button>` : null}
            ${running && !lockout ? html`<button class="warn" onClick=${() => ask('stop')}>Stop</button>` : null}
            ${node.state === 'stopped' || node.state === 'failed' ? html`<button onClick=${() => ask('start')}>Start</button>` : null}
          </td>`
        : null
    }
  </tr>`;
}

export function Bar({ size, capacity }) {
  const share = capacity > 0 ? Math.min(1, size / capacity) : 0;
  const level = share >= 0.9 ? 'full' : share >= 0.5 ? 'high' : 'ok';
  return html`<span class="bar" title=${`${size} of ${capacity}`}>
    <span class=${`fill fill-${level}${size > 0 ? ' fill-some' : ''}`} style=${`width: ${(share * 100).toFixed(1)}%`}></span>
    <span class="bar-text">${num(size)} / ${num(capacity)}</span>
  </span>`;
}

/** `{ manual: 2 }` as `manual`, `{ manual: 2, panic: 1 }` as `manual 2 · panic 1`. */
const reasons = (counts) => (Object.keys(counts).length === 1 ? Object.keys(counts)[0] : byReason(counts));

function findPath(node, name) {
  if (node.name === name) return node.path;
  for (const child of node.children ?? []) {
    const found = findPath(child, name);
    if (found !== null) return found;
  }
  return null;
}
