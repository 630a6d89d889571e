// The live stream (GET /api/v1/ws): JSON objects with a `type` field; a
// frame holds one message, or a JSON array of them when several were queued.
// One socket for the whole app; pages subscribe. Reconnects with backoff
// (1 s doubling to 30 s, with jitter) until stop() is called.

const listeners = new Set();
const stateListeners = new Set();
let sock = null;
let timer = null;
let delay = 1000;
let wanted = false;
let state = 'closed'; // connecting | open | closed
// the last log ids seen (hello.last, then each event): a reconnect asks for
// what it missed (?door=&alarm=&call=), so a network blip loses no event
let last = null;
const LOGS = ['door', 'alarm', 'call'];

function note(msg) {
  if (msg.type === 'hello' && msg.last && typeof msg.last === 'object') {
    if (!last) last = {};
    // the first hello sets where we are; after a reconnect our own ids stand
    // (the missed rows follow the hello)
    for (const k of LOGS) if (Number.isInteger(msg.last[k]) && !Number.isInteger(last[k])) last[k] = msg.last[k];
  } else if (msg.type === 'event' && last && LOGS.includes(msg.log) && Number.isInteger(msg.id)) {
    if (!(last[msg.log] >= msg.id)) last[msg.log] = msg.id;
  }
}

function setState(s) {
  state = s;
  for (const fn of stateListeners) fn(s);
}

function connect() {
  if (!wanted) return;
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  setState('connecting');
  try {
    const q = last ? `?${LOGS.filter((k) => Number.isInteger(last[k])).map((k) => `${k}=${last[k]}`).join('&')}` : '';
    sock = new WebSocket(`${proto}//${location.host}/api/v1/ws${q}`);
  } catch {
    retry();
    return;
  }
  sock.onopen = () => {
    delay = 1000;
    setState('open');
  };
  sock.onmessage = (ev) => {
    let data;
    try {
      data = JSON.parse(ev.data);
    } catch {
      return; // not JSON: nothing to show
    }
    for (let msg of Array.isArray(data) ? data : [data]) {
      if (!msg || typeof msg !== 'object' || Array.isArray(msg)) continue;
      if (typeof msg.type !== 'string') msg = { type: 'unknown', ...msg };
      note(msg);
      for (const fn of listeners) fn(msg);
    }
  };
  sock.onclose = () => {
    sock = null;
    retry();
  };
  sock.onerror = () => {}; // onclose follows
}

function retry() {
  setState('closed');
  if (!wanted || timer) return;
  const wait = delay / 2 + Math.random() * (delay / 2);
  delay = Math.min(delay * 2, 30000);
  timer = setTimeout(() => {
    timer = null;
    connect();
  }, wait);
}

export function start() {
  if (wanted) return;
  wanted = true;
  delay = 1000;
  connect();
}

export function stop() {
  wanted = false;
  last = null; // the next login starts from now
  clearTimeout(timer);
  timer = null;
  if (sock) {
    sock.onclose = null;
    sock.close();
    sock = null;
  }
  setState('closed');
}

/** Calls FN(message) for every message; answers the unsubscribe function. */
export function subscribe(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** Calls FN(state) on every connection change; answers the unsubscribe function. */
export function onState(fn) {
  stateListeners.add(fn);
  return () => stateListeners.delete(fn);
}

export const getState = () => state;
