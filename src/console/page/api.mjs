/**
 * The console's client of the admin API: the same routes and bearer token every other client uses.
 *
 * - `createApi(token)` sends `Authorization: Bearer <token>` on every request; the token lives in this
 *   closure and in sessionStorage (`TOKEN_KEY`), never in a URL or a cookie.
 * - Every answer that is not 2xx throws an ApiError with the status and the API's `{ error: { code,
 *   message } }`: 401 means the token is not (or no longer) valid, 403 that its role may not do this.
 */
export const TOKEN_KEY = 'ethhook.console.token';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function createApi(token) {
  const call = async (method, path, body) => {
    const headers = { authorization: `Bearer ${token}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res;
    try {
      res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
    } catch (err) {
      throw new ApiError(0, 'NETWORK', `the node did not answer: ${err.message}`);
    }
    const text = await res.text();
    let json = null;
    try {
      json = text === '' ? null : JSON.parse(text);
    } catch {
      json = null;
    }
    if (!res.ok) {
      const error = json?.error ?? {};
      throw new ApiError(res.status, error.code ?? `HTTP_${res.status}`, error.message ?? `${method} ${path} answered ${res.status}`);
    }
    return json;
  };
  return {
    get: (path) => call('GET', path),
    post: (path, body) => call('POST', path, body),
  };
}

export const storedToken = () => sessionStorage.getItem(TOKEN_KEY);
export const storeToken = (token) => sessionStorage.setItem(TOKEN_KEY, token);
export const forgetToken = () => sessionStorage.removeItem(TOKEN_KEY);
