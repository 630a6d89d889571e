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

function setState(s) {
  state = s;
  for (const fn of stateListeners) fn(s);
}

function connect() {
  if (!wanted) return;
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  setState('connecting');
  try {
    sock = new WebSocket(`${proto}//${location.host}/api/v1/ws`);
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
