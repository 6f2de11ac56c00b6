/**
 * The operator console: one page served by the node at /console (src/actors/admin/console-routes.ts).
 *
 * - Token: a page without one asks for it. It is checked with GET /admin/whoami, which also says its role;
 *   it is kept in sessionStorage (this tab, until it closes) and sent as `Authorization: Bearer`. A 401
 *   at any time forgets it and shows the prompt again with the API's answer.
 * - Live data: GET /admin/console/snapshot and GET /admin/console/series every `POLL_MS`, the next
 *   poll asked only once the previous one answered (a slow node is never asked twice at once). Polling
 *   rather than the event stream: what the page shows is state read on demand (the tree, the metrics
 *   registry), which the stream does not carry, and one request every two seconds is nothing for the node.
 * - Actions (operate role only; a read token sees no buttons): every one asks for confirmation first,
 *   then calls the audited API route every other client uses; the answer or the error is shown, and the
 *   page polls again at once. A 403 (the token's role was lowered since sign-in) also asks whoami again,
 *   so the buttons follow the role.
 */
/* global document */
import { render } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import 'uplot/dist/uPlot.min.css';
import './console.css';
import { createApi, forgetToken, storeToken, storedToken } from './api.mjs';
import { Chains } from './chains.mjs';
import { errorText } from './format.mjs';
import { html } from './html.mjs';
import { Cluster, Governance, Streams } from './status-cards.mjs';
import { Tree } from './tree.mjs';
import { Webhooks } from './webhooks.mjs';

const POLL_MS = 2_000;

function App() {
  const [token, setToken] = useState(storedToken());
  const [who, setWho] = useState(null);
  const [loginError, setLoginError] = useState(null);
  const [snapshot, setSnapshot] = useState(null);
  const [series, setSeries] = useState(null);
  const [pollError, setPollError] = useState(null);
  const [pending, setPending] = useState(null);
  const [notice, setNotice] = useState(null);
  const [secret, setSecret] = useState(null);
  const [selected, setSelected] = useState(null);
  const [kick, setKick] = useState(0);
  const api = useMemo(() => (token ? createApi(token) : null), [token]);

  const signOut = (err) => {
    forgetToken();
    setToken(null);
    setWho(null);
    setSnapshot(null);
    setSeries(null);
    setLoginError(err ? errorText(err) : null);
  };

  useEffect(() => {
    if (api === null) return;
    let live = true;
    api.get('/admin/whoami').then(
      (answer) => {
        if (!live) return;
        storeToken(token);
        setLoginError(null);
        setWho(answer);
      },
      (err) => live && signOut(err),
    );
    return () => (live = false);
  }, [api]);

  useEffect(() => {
    if (who === null) return;
    let live = true;
    let timer;
    const poll = async () => {
      try {
        const [s, t] = await Promise.all([api.get('/admin/console/snapshot'), api.get('/admin/console/series')]);
        if (!live) return;
        setSnapshot(s);
        setSeries(t);
        setPollError(null);
      } catch (err) {
        if (!live) return;
        if (err.status === 401) return signOut(err);
        setPollError(err);
      }
      if (live) timer = setTimeout(poll, POLL_MS);
    };
    void poll();
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [who, kick]);

  const run = async (action) => {
    setPending(null);
    try {
      const answer = await action.run(api);
      setNotice({ kind: 'ok', text: action.done });
      if (action.secretOf) setSecret({ endpointId: action.secretOf, value: answer.secret });
    } catch (err) {
      if (err.status === 401) return signOut(err);
      setNotice({ kind: 'error', text: errorText(err) });
      // The token's role is no longer what the page was told: ask again, so the buttons follow it.
      if (err.status === 403) api.get('/admin/whoami').then(setWho, signOut);
    }
    setKick((k) => k + 1);
  };

  if (who === null) return html`<${Login} error=${loginError} onSubmit=${(value) => setToken(value)} />`;
  const can = who.role === 'operate';
  const act = (action) => setPending(action);

  return html`<header class="top">
      <h1>ethhook</h1>
      <span class="muted">${snapshot ? `${snapshot.node.id} · v${snapshot.node.version}` : ''}</span>
      <span class=${`badge badge-${can ? 'running' : 'idle'}`} id="role">${who.role}</span>
      <span class=${`muted small${pollError ? ' hot' : ''}`}
        >${pollError ? `not updating: ${errorText(pollError)}` : snapshot ? `updated ${new Date(snapshot.at).toLocaleTimeString()}` : 'loading…'}</span
      >
      <button class="quiet" onClick=${() => signOut(null)}>Sign out</button>
    </header>
    ${
      notice
        ? html`<div class=${`notice notice-${notice.kind}`} role="status" id="notice">
            <span>${notice.text}</span><button class="quiet" onClick=${() => setNotice(null)}>×</button>
          </div>`
        : null
    }
    ${
      snapshot
        ? html`<div class="layout">
            <${Tree} root=${snapshot.tree} can=${can} act=${act} />
            <div class="side">
              <${Governance} governance=${snapshot.governance} can=${can} act=${act} />
              <${Streams} streams=${snapshot.streams} />
            </div>
            <${Chains} chains=${snapshot.chains} series=${series} />
            <${Webhooks}
              snapshot=${snapshot}
              series=${series}
              can=${can}
              act=${act}
              api=${api}
              selected=${selected}
              select=${setSelected}
            />
            <${Cluster} cluster=${snapshot.cluster} chains=${snapshot.chains} />
          </div>`
        : null
    }
    ${pending ? html`<${Confirm} action=${pending} onCancel=${() => setPending(null)} onConfirm=${() => void run(pending)} />` : null}
    ${secret ? html`<${SecretOnce} secret=${secret} onClose=${() => setSecret(null)} />` : null}`;
}

function Login({ error, onSubmit }) {
  const [value, setValue] = useState('');
  const submit = (ev) => {
    ev.preventDefault();
    if (value.trim() !== '') onSubmit(value.trim());
  };
  return html`<form class="login" id="login" onSubmit=${submit}>
    <h1>ethhook console</h1>
    <p>Paste an admin token of this node (<code>read</code> to look, <code>operate</code> to act too). It is kept in this tab only.</p>
    ${error ? html`<p class="notice notice-error" id="login-error" role="alert">The token was refused: ${error}</p>` : null}
    <input
      type="password"
      name="token"
      autocomplete="off"
      placeholder="admin token"
      value=${value}
      onInput=${(ev) => setValue(ev.currentTarget.value)}
      autofocus
    />
    <button type="submit" class="primary">Sign in</button>
  </form>`;
}

function Confirm({ action, onCancel, onConfirm }) {
  return html`<div class="overlay">
    <div class="dialog" role="dialog" aria-modal="true" aria-labelledby="confirm-title" id="confirm">
      <h2 id="confirm-title">${action.title}</h2>
      <p>${action.body}</p>
      <div class="buttons">
        <button class="quiet" onClick=${onCancel}>Cancel</button>
        <button class="primary" id="confirm-ok" onClick=${onConfirm}>${action.confirm}</button>
      </div>
    </div>
  </div>`;
}

function SecretOnce({ secret, onClose }) {
  return html`<div class="overlay">
    <div class="dialog" role="dialog" aria-modal="true" id="secret">
      <h2>New secret of ${secret.endpointId}</h2>
      <p>Copy it now: it is shown this once and cannot be read again.</p>
      <pre class="secret">${secret.value}</pre>
      <div class="buttons"><button class="primary" onClick=${onClose}>Done</button></div>
    </div>
  </div>`;
}

const root = document.getElementById('console');
root.replaceChildren();
render(html`<${App} />`, root);
