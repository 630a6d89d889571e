// Shared pieces: htm bound to preact, the session context and roles,
// labels in the manuals' words, time formatting in the site's time zone,
// dialogs, notices, tables and data hooks.
import { h, createContext } from '../vendor/preact.module.js';
import { useState, useEffect, useRef, useContext, useCallback, useId } from '../vendor/hooks.module.js';
import htm from '../vendor/htm.module.js';
import * as api from '../api.js';

export const html = htm.bind(h);

/* ---- session and roles ---- */

/** {user, role, settings} of the logged-in user; settings may be null. */
export const Session = createContext({ user: null, role: 'viewer', settings: null });
export const useSession = () => useContext(Session);

// people: apartments, persons, credentials, groups, temp keys, import, messages
// doors: open relays and board channels; emergency; alarms: solve
// site: buildings, devices, MAC library, boards, parking lots, settings, users, maintenance commands
const RIGHTS = {
  admin: ['people', 'doors', 'emergency', 'alarms', 'site'],
  manager: ['people', 'doors', 'emergency', 'alarms'],
  viewer: [],
};
export const can = (role, what) => (RIGHTS[role] || []).includes(what);

/* ---- hash routes: #/page?query ---- */

export const href = (page, query) => `#/${page}${api.qs(query)}`;
export function navigate(page, query) {
  location.hash = href(page, query);
}

/* ---- vocabulary ---- */

export const DEVICE_TYPES = {
  0: 'Multi-tenant door phone',
  1: 'Single-tenant door phone',
  2: 'Indoor monitor',
  3: 'Guard phone',
  50: 'Access control terminal',
};
export const isDoorPhone = (d) => [0, 1, 50].includes(Number(d.type));

export const CRED_TYPES = {
  pin: 'PIN',
  rf: 'RF card',
  uhf: 'UHF tag',
  plate: 'Licence plate',
  face: 'Face',
  fingerprint: 'Fingerprint',
  id_access: 'ID access',
  qr: 'QR code',
};

export const PERSON_KINDS = {
  resident: 'Resident (master account)',
  family: 'Family member',
  staff: 'Staff',
  personnel: 'Personnel',
  pm_staff: 'Property management staff',
  delivery: 'Delivery',
};

export const METHODS = {
  app_home: 'App home page',
  app_talk: 'App talking page',
  pin: 'PIN',
  face: 'Face',
  rf: 'RF card',
  bluetooth: 'Bluetooth',
  nfc: 'NFC',
  uhf: 'UHF tag',
  plate: 'Licence plate',
  qr: 'QR code',
  tempkey: 'Temp key',
  fingerprint: 'Fingerprint',
  id_access: 'ID access',
  app: 'App',
  dtmf: 'DTMF',
};

export const CALL_TYPES = [
  'SmartPlus app and indoor monitor',
  'Phone and indoor monitor',
  'SmartPlus app and indoor monitor, phone as backup',
  'Indoor monitors, SmartPlus app as backup',
  'Indoor monitors, phone as backup',
  'Indoor monitors, then SmartPlus app, finally phone',
];

export const WEEKDAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];

/** Options for <select>: [[value, label], ...] from an object of labels. */
export const opts = (labels) => Object.entries(labels);

/* ---- times: Unix seconds shown and entered in the site's time zone ---- */

function parts(ts, tz, hour12) {
  const d = new Date(typeof ts === 'number' ? ts * 1000 : ts);
  if (Number.isNaN(d.getTime())) return null;
  let f;
  try {
    f = new Intl.DateTimeFormat('en-GB', {
      timeZone: tz || undefined,
      year: 'numeric', month: '2-digit', day: '2-digit',
      hour: '2-digit', minute: '2-digit', second: '2-digit',
      hourCycle: hour12 ? 'h12' : 'h23',
    });
  } catch {
    f = new Intl.DateTimeFormat('en-GB', {
      year: 'numeric', month: '2-digit', day: '2-digit',
      hour: '2-digit', minute: '2-digit', second: '2-digit',
      hourCycle: hour12 ? 'h12' : 'h23',
    });
  }
  const o = {};
  for (const p of f.formatToParts(d)) o[p.type] = p.value;
  return o;
}

/** A timestamp as the site writes it (settings date_format, time_format, timezone). */
export function fmtTime(ts, settings) {
  if (ts === null || ts === undefined || ts === '') return '';
  const s = settings || {};
  const h12 = s.time_format === '12h';
  const p = parts(ts, s.timezone, h12);
  if (!p) return String(ts);
  const date = (s.date_format || 'YYYY-MM-DD')
    .replace('YYYY', p.year)
    .replace('MM', p.month)
    .replace('DD', p.day);
  const time = `${p.hour}:${p.minute}:${p.second}${h12 ? ` ${(p.dayPeriod || '').toUpperCase()}` : ''}`;
  return `${date} ${time}`;
}

/** Unix seconds -> "YYYY-MM-DDTHH:MM" in the site's zone, for <input type=datetime-local>. */
export function toLocalInput(ts, tz) {
  const p = parts(ts, tz, false);
  if (!p) return '';
  const hour = p.hour === '24' ? '00' : p.hour;
  return `${p.year}-${p.month}-${p.day}T${hour}:${p.minute}`;
}

/** "YYYY-MM-DDTHH:MM" in the site's zone -> Unix seconds (null if empty or malformed). */
export function fromLocalInput(s, tz) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/.exec(s || '');
  if (!m) return null;
  const wall = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +(m[6] || 0));
  const offset = (ms) => {
    const p = parts(ms / 1000, tz, false);
    return Date.UTC(+p.year, +p.month - 1, +p.day, p.hour === '24' ? 0 : +p.hour, +p.minute, +p.second) - ms;
  };
  let t = wall - offset(wall);
  t = wall - offset(t); // once more: the offset may differ across a DST change
  return Math.round(t / 1000);
}

export function fmtDuration(s) {
  if (s === null || s === undefined) return '';
  const n = Number(s);
  if (n < 60) return `${n} s`;
  if (n < 3600) return `${Math.floor(n / 60)} min ${n % 60} s`;
  const d = Math.floor(n / 86400);
  const hh = Math.floor((n % 86400) / 3600);
  const mm = Math.floor((n % 3600) / 60);
  return d ? `${d} d ${hh} h` : `${hh} h ${mm} min`;
}

/** A compact one-line JSON text for values the UI has no special view for. */
export function brief(v) {
  if (v === null || v === undefined) return '';
  if (typeof v !== 'object') return String(v);
  const s = JSON.stringify(v);
  return s.length > 160 ? `${s.slice(0, 157)}...` : s;
}

/* ---- notices (one polite live region for the whole app) ---- */

const noticeSubs = new Set();
let noticeSeq = 0;

/** Shows a short notice; KIND 'ok' or 'error'. */
export function notify(text, kind = 'ok') {
  const n = { id: ++noticeSeq, text, kind };
  for (const fn of noticeSubs) fn(n);
}

export function Notices() {
  const [list, setList] = useState([]);
  useEffect(() => {
    const fn = (n) => {
      setList((l) => [...l.slice(-2), n]);
      setTimeout(() => setList((l) => l.filter((x) => x.id !== n.id)), n.kind === 'error' ? 10000 : 5000);
    };
    noticeSubs.add(fn);
    return () => noticeSubs.delete(fn);
  }, []);
  return html`<div class="notices" role="status" aria-live="polite" data-test="notices">
    ${list.map((n) => html`<p key=${n.id} class=${`notice ${n.kind}`}>${n.text}</p>`)}
  </div>`;
}

/* ---- dialogs: native modal <dialog>, focus kept inside, Escape closes ---- */

const FOCUSABLE =
  'a[href], button:not([disabled]), input:not([disabled]):not([type=hidden]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';

function focusables(root) {
  return [...root.querySelectorAll(FOCUSABLE)].filter((el) => el.getClientRects().length > 0);
}

export function Dialog({ title, onClose, children, testId = 'dialog', wide }) {
  const ref = useRef(null);
  const titleId = useId();
  const closeRef = useRef(onClose);
  closeRef.current = onClose;
  useEffect(() => {
    const d = ref.current;
    const opener = document.activeElement;
    if (typeof d.showModal === 'function') d.showModal();
    else d.setAttribute('open', '');
    const body = d.querySelector('.dialog-body');
    const first = d.querySelector('[data-autofocus]') || (body && focusables(body)[0]) || focusables(d)[0];
    if (first) first.focus();
    const onNativeClose = () => closeRef.current();
    d.addEventListener('close', onNativeClose);
    return () => {
      d.removeEventListener('close', onNativeClose);
      if (d.open) d.close();
      const back = opener && document.contains(opener) ? opener : document.getElementById('page-heading');
      if (back) back.focus();
    };
  }, []);
  const onKeyDown = (e) => {
    if (e.key === 'Escape') {
      e.preventDefault();
      e.stopPropagation();
      closeRef.current();
      return;
    }
    if (e.key !== 'Tab') return;
    const f = focusables(ref.current);
    if (!f.length) return;
    const first = f[0];
    const last = f[f.length - 1];
    if (e.shiftKey && (document.activeElement === first || !ref.current.contains(document.activeElement))) {
      e.preventDefault();
      last.focus();
    } else if (!e.shiftKey && document.activeElement === last) {
      e.preventDefault();
      first.focus();
    }
  };
  const onCancel = (e) => {
    e.preventDefault();
    closeRef.current();
  };
  return html`<dialog ref=${ref} class=${wide ? 'dialog wide' : 'dialog'} aria-labelledby=${titleId}
      data-test=${testId} onKeyDown=${onKeyDown} onCancel=${onCancel}>
    <div class="dialog-head">
      <h2 id=${titleId}>${title}</h2>
      <button type="button" class="icon" aria-label="Close" data-test="dialog-close" onClick=${() => closeRef.current()}>×</button>
    </div>
    <div class="dialog-body">${children}</div>
  </dialog>`;
}

/** A yes/no question; ONCONFIRM may be async, its error is shown in the dialog. */
export function Confirm({ title, children, confirmLabel, danger, onConfirm, onClose, testId = 'confirm-dialog' }) {
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState(null);
  async function go() {
    setBusy(true);
    setErr(null);
    try {
      await onConfirm();
      onClose();
    } catch (e) {
      setErr(e.message);
      setBusy(false);
    }
  }
  return html`<${Dialog} title=${title} onClose=${onClose} testId=${testId}>
    <div class="confirm-text">${children}</div>
    <div class="form-error" role="alert">${err}</div>
    <div class="actions">
      <button type="button" class=${danger ? 'danger' : 'primary'} data-test="confirm-yes" disabled=${busy} onClick=${go}>
        ${busy ? 'Working...' : confirmLabel}
      </button>
      <button type="button" data-test="confirm-no" data-autofocus onClick=${onClose}>Cancel</button>
    </div>
  </${Dialog}>`;
}

/* ---- tables (cards on a phone) ---- */

/**
 * COLUMNS: [{label, render(row) | key}], ROWS: objects with an `id`.
 * Below 640 px each row is a card, every cell labelled by data-label.
 */
export function DataTable({ columns, rows, caption, empty = 'Nothing here yet.', testId = 'table' }) {
  if (!rows || !rows.length) return html`<p class="empty" data-test=${`${testId}-empty`}>${empty}</p>`;
  return html`<div class="table-wrap">
    <table class="data" data-test=${testId}>
      ${caption && html`<caption class="sr-only">${caption}</caption>`}
      <thead><tr>${columns.map((c) => html`<th scope="col">${c.label}</th>`)}</tr></thead>
      <tbody>
        ${rows.map((r, i) => html`<tr key=${r.id ?? i} data-id=${r.id}>
          ${columns.map((c) => html`<td data-label=${c.label}>${c.render ? c.render(r) : brief(r[c.key])}</td>`)}
        </tr>`)}
      </tbody>
    </table>
  </div>`;
}

export function Badge({ on, yes = 'Online', no = 'Offline', unknown = 'Unknown' }) {
  if (on === undefined || on === null) return html`<span class="badge unknown">${unknown}</span>`;
  return html`<span class=${on ? 'badge ok' : 'badge bad'}>${on ? yes : no}</span>`;
}

export function LoadError({ error, retry }) {
  if (!error) return null;
  return html`<div class="load-error" role="alert">
    <p>${error.message}</p>
    ${retry && html`<button type="button" onClick=${retry}>Try again</button>`}
  </div>`;
}

/* ---- data hooks ---- */

/** Runs FN (returning a promise) when DEPS change: {data, error, loading, reload, setData}. */
export function useAsync(fn, deps) {
  const [st, setSt] = useState({ loading: true, data: null, error: null });
  const seq = useRef(0);
  const run = useCallback(() => {
    const n = ++seq.current;
    setSt((s) => ({ ...s, loading: true, error: null }));
    return fn().then(
      (data) => n === seq.current && setSt({ loading: false, data, error: null }),
      (error) => n === seq.current && setSt({ loading: false, data: null, error }),
    );
  }, deps);
  useEffect(() => {
    run();
  }, [run]);
  const setData = useCallback((d) => setSt((s) => ({ ...s, data: typeof d === 'function' ? d(s.data) : d })), []);
  return { ...st, reload: run, setData };
}

// Whole small collections (buildings, devices, boards, groups) for pickers
// and names, shared by every page until something changes them.
const cache = new Map();

export function loadAll(entities, params = {}) {
  const key = entities + api.qs(params);
  if (!cache.has(key)) {
    const p = api.listAll(api.entityPath(entities), params).catch((e) => {
      cache.delete(key);
      throw e;
    });
    cache.set(key, p);
  }
  return cache.get(key);
}

/** Forget cached lists of ENTITIES (or everything) after a change. */
export function invalidate(entities) {
  for (const k of [...cache.keys()]) if (!entities || k === entities || k.startsWith(`${entities}?`)) cache.delete(k);
}

/** {items, byId, loading, error} of a whole collection; SKIP leaves it empty. */
export function useAll(entities, params = {}, skip = false) {
  const key = JSON.stringify(params);
  const r = useAsync(() => (skip ? Promise.resolve([]) : loadAll(entities, params)), [entities, key, skip]);
  const items = r.data || [];
  return { items, byId: new Map(items.map((x) => [x.id, x])), loading: r.loading, error: r.error, reload: r.reload };
}

// Single entities by id (persons named in a group, ...), fetched once.
const one = new Map();
export function useEntity(entities, id) {
  const key = `${entities}/${id}`;
  return useAsync(() => {
    if (!id) return Promise.resolve(null);
    if (!one.has(key)) {
      one.set(key, api.get(api.entityPath(entities, id)).catch((e) => {
        one.delete(key);
        throw e;
      }));
    }
    return one.get(key);
  }, [key]);
}

export const personName = (p) => (p ? [p.first_name, p.last_name].filter(Boolean).join(' ') || p.id : '');
export const aptLabel = (a, buildings) => {
  if (!a) return '';
  const b = buildings && buildings.get(a.building);
  return `${b ? `${b.name} ` : ''}APT ${a.apt}${a.name ? ` (${a.name})` : ''}`;
};

/** The name of a person by id (a link-free label; falls back to the id). */
export function PersonName({ id }) {
  const r = useEntity('persons', id);
  return html`<span>${r.data ? personName(r.data) : id}</span>`;
}

/** Page heading: focused by the router after each navigation (FOCUS: also when mounted). */
export function PageHead({ title, children, focus }) {
  useEffect(() => {
    const h = document.getElementById('page-heading');
    if (focus && h) h.focus();
  }, []);
  return html`<div class="page-head">
    <h1 id="page-heading" tabindex="-1">${title}</h1>
    ${children}
  </div>`;
}
