// The REST API of ADMIN.md: JSON in and out, the session cookie, the CSRF
// token on every mutating request, errors as ApiError (status, code, field).

const BASE = '/api/v1';
const CSRF_KEY = 'gh_csrf';

let onUnauthorized = () => {};

/** app.js registers what a 401 does (drop the session, show the login page). */
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

/** True when this tab logged in before (a reload): worth asking GET /me. */
export const hasCsrf = () => !!sessionStorage.getItem(CSRF_KEY);

export function setCsrf(token) {
  if (token) sessionStorage.setItem(CSRF_KEY, token);
  else sessionStorage.removeItem(CSRF_KEY);
}

export class ApiError extends Error {
  constructor(status, code, field, message, body) {
    super(message || `Request failed (${status})`);
    this.status = status;
    this.code = code || String(status);
    this.field = field || null;
    this.body = body; // the parsed answer, e.g. an import report sent with a 422
  }
}

/** "?a=1&b=x" from an object; empty, null and undefined values are left out. */
export function qs(params = {}) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') p.set(k, String(v));
  }
  const s = p.toString();
  return s ? `?${s}` : '';
}

/** The URL of an API path, e.g. for a CSV export link. */
export const url = (path, params) => BASE + path + qs(params);

const MESSAGES = {
  401: 'Your session has ended. Please log in again.',
  403: 'You are not allowed to do this.',
  404: 'Not found.',
  413: 'That is too large for the gateway.',
  429: 'Too many attempts. Wait a moment and try again.',
};

/**
 * One request. BODY: an object (sent as JSON), or a Blob/string with
 * opts.type as its content type. Answers the parsed JSON, or null for 204.
 */
export async function request(method, path, body, opts = {}) {
  const headers = { Accept: 'application/json' };
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    if (opts.type) {
      headers['Content-Type'] = opts.type;
      init.body = body;
    } else {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
  }
  if (method !== 'GET' && method !== 'HEAD') {
    headers['X-CSRF-Token'] = sessionStorage.getItem(CSRF_KEY) || '';
  }
  let res;
  try {
    res = await fetch(BASE + path, init);
  } catch {
    throw new ApiError(0, 'network', null, 'The gateway cannot be reached. Check the network and try again.');
  }
  if (res.status === 204) return null;
  let data = null;
  const ctype = res.headers.get('Content-Type') || '';
  if (ctype.includes('json')) {
    try {
      data = await res.json();
    } catch {
      data = null;
    }
  }
  if (res.ok) return data;
  const e = (data && data.error) || {};
  const err = new ApiError(res.status, e.code, e.field, e.message || MESSAGES[res.status], data);
  if (res.status === 401 && !opts.noRedirect) onUnauthorized();
  throw err;
}

export const get = (path, params, opts) => request('GET', path + qs(params), undefined, opts);
export const post = (path, body, opts) => request('POST', path, body, opts);
export const put = (path, body, opts) => request('PUT', path, body, opts);
export const del = (path, opts) => request('DELETE', path, undefined, opts);

/** A page of a list endpoint: {items, next}. A bare array is accepted too. */
export async function list(path, params = {}) {
  const data = await get(path, params);
  if (Array.isArray(data)) return { items: data, next: null };
  return { items: (data && data.items) || [], next: (data && data.next) || null };
}

/** Does ITEM have every field of FILTER (compared as text)? */
export const matches = (filter) => (item) =>
  Object.entries(filter).every(([k, v]) => v === undefined || v === null || v === '' || String(item[k] ?? '') === String(v));

/**
 * Items of a list that KEEP accepts, reading pages until WANT are found,
 * the list ends or MAXPAGES were read: {items, next}. The filters are sent
 * too; a server that ignores them still gives the right rows, only slower.
 */
export async function listWhere(path, params, keep, want = 50, maxPages = 25) {
  let items = [];
  let cursor = params.cursor || null;
  let pages = 0;
  do {
    const page = await list(path, { ...params, cursor });
    items = items.concat(page.items.filter(keep));
    cursor = page.next;
    pages++;
  } while (cursor && items.length < want && pages < maxPages);
  return { items, next: cursor };
}

/** Every item of a list matching its filters, following `next` (capped: for pickers, not for logs). */
export async function listAll(path, params = {}, cap = 5000) {
  let out = [];
  let cursor = null;
  let read = 0;
  const keep = matches(params);
  do {
    const page = await list(path, { ...params, limit: 500, cursor });
    out = out.concat(page.items.filter(keep));
    read += page.items.length;
    cursor = page.next;
  } while (cursor && read < cap);
  return out;
}

/** Entity collection paths: "/buildings", "/buildings/ID". */
export const entityPath = (entities, id) =>
  id === undefined ? `/${entities}` : `/${entities}/${encodeURIComponent(id)}`;
