// The web UI in Debian's headless Chromium through playwright-core, against
// the stack tests/web-ui/run.py started (it passes the addresses in GH_*).
// Each scenario acts as a person would and checks what that person would
// notice, plus the far side of it (the door phone got the command, the
// board's relay switched) through run.py's control port.
//
// usage (run.py does this): node ui.mjs [SCENARIO...]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const URL = process.env.GH_URL;
const CTL = process.env.GH_CTL;
const ART = process.env.GH_ARTIFACTS;
const USERS = JSON.parse(process.env.GH_USERS || '{}');
const DEV = process.env.GH_DEVICE;
const BOARD = process.env.GH_BOARD;
const CSV = process.env.GH_CSV;
const SITE_NAME = process.env.GH_SITE_NAME || '';
const TIMEOUT = 15000; // what any one wait may take on a loaded 2-core machine
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 360, height: 740 };
const PAGES = ['dashboard', 'buildings', 'people', 'groups', 'devices', 'boards', 'logs', 'alarms', 'conflicts',
  'settings', 'users'];
const HEADINGS = {
  dashboard: 'Dashboard', buildings: 'Buildings & apartments', people: 'People & credentials',
  groups: 'Access groups & temp keys', devices: 'Devices & relays', boards: 'Boards & buses', logs: 'Logs',
  alarms: 'Alarms', conflicts: 'Conflicts', settings: 'Settings', users: 'Users',
};

/* ---- checks: "ok"/"FAIL" lines like the other suites ---- */

const counts = { passed: 0, failed: 0 };
class Stop extends Error {}
let current = null; // the scenario's page, for a screenshot of a failure

const TIMES = !!process.env.GH_WEBUI_TIMES; // show how long each check took (never asserted)
let lastAt = Date.now();
const took = () => {
  const t = Date.now() - lastAt;
  lastAt = Date.now();
  return TIMES ? ` [${t} ms]` : '';
};

function pass(name) {
  counts.passed++;
  console.log(`  ok    ${name}${took()}`);
}

function fail(name, detail) {
  counts.failed++;
  console.log(`  FAIL  ${name}${took()}${detail ? `\n        ${String(detail).split('\n').slice(0, 6).join('\n        ')}` : ''}`);
}

/** One check: FN throws (or answers false) on failure; the rest of the scenario is then skipped. */
async function check(name, fn) {
  let detail = null;
  try {
    const r = await fn();
    if (r !== false) {
      pass(name);
      return r;
    }
  } catch (e) {
    detail = e && e.message ? e.message : String(e);
  }
  fail(name, detail);
  if (current) {
    const shot = path.join(ART, `FAIL-${name.replace(/[^a-z0-9]+/gi, '-').slice(0, 60)}.png`);
    await current.screenshot({ path: shot, fullPage: true }).catch(() => {});
  }
  throw new Stop();
}

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

/** Polls FN until it answers something truthy (never a fixed sleep). */
async function until(fn, what, timeout = TIMEOUT) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e.message;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last !== undefined ? ` (last: ${JSON.stringify(last)})` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/* ---- the simulators, through run.py's control port ---- */

async function ctl(method, p, body) {
  const r = await fetch(CTL + p, {
    method, headers: { 'Content-Type': 'application/json' }, body: body ? JSON.stringify(body) : undefined,
  });
  return r.json();
}
const device = () => ctl('GET', '/device');
const board = () => ctl('GET', '/board');

/* ---- the browser ---- */

const HEADED = !!process.env.GH_WEBUI_HEADED;
let browser;
const sessions = {}; // user -> page, logged in
const problems = []; // uncaught errors and console errors (CSP violations among them)

async function newPage(viewport = DESKTOP, extra = {}) {
  const ctx = await browser.newContext({
    baseURL: URL, ignoreHTTPSErrors: true, viewport, acceptDownloads: true, ...extra,
  });
  ctx.setDefaultTimeout(TIMEOUT);
  ctx.setDefaultNavigationTimeout(TIMEOUT * 2);
  // the app's websockets, so a check can drop one as a network blip would
  await ctx.addInitScript(() => {
    const Native = window.WebSocket;
    window.ghSockets = [];
    window.WebSocket = class extends Native {
      constructor(...args) { super(...args); window.ghSockets.push(this); }
    };
  });
  const page = await ctx.newPage();
  if (process.env.GH_WEBUI_WS) {
    page.on('websocket', (w) => w.on('framereceived', (f) => console.log(`        ws <- ${String(f.payload).slice(0, 300)}`)));
  }
  page.on('pageerror', (e) => problems.push(`${page.url()}: ${e.message}`));
  page.on('console', (m) => {
    // a refused request (401 at a wrong password, the viewer's 403) is logged by the browser itself
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) problems.push(`${page.url()}: ${m.text()}`);
  });
  return page;
}

async function fillLogin(page, user, password) {
  await page.locator('#login-user').fill(user);
  await page.locator('#login-password').fill(password);
  await page.locator('#login-submit').click();
}

async function heading(page, text) {
  await page.locator('#page-heading', { hasText: text }).waitFor();
}

/** The page of USER, logged in (one browser context each). */
async function session(user) {
  if (sessions[user]) return sessions[user];
  const page = await newPage();
  await page.goto('/');
  await fillLogin(page, user, USERS[user][1]);
  await heading(page, 'Dashboard');
  sessions[user] = page;
  return page;
}

/** Follows the navigation link to PAGE and waits for its heading and data. */
async function go(page, id) {
  const toggle = page.locator('[data-test=nav-toggle]');
  if (await toggle.isVisible()) {
    // the phone layout: the navigation is behind Menu
    if ((await toggle.getAttribute('aria-expanded')) !== 'true') await toggle.click();
  }
  await page.locator(`[data-test=nav-${id}]`).click();
  await heading(page, HEADINGS[id]);
  await settled(page);
}

/** No "Loading..." left on the page. */
async function settled(page) {
  await page.waitForFunction(() => !document.querySelector('.loading'), null, { timeout: TIMEOUT });
}

const notice = (page, text) => page.locator('[data-test=notices] .notice', { hasText: text }).first().waitFor();

/** A request from inside the page, as its own scripts would send it (cookie and CSRF token). */
function inPage(page, method, p, body) {
  return page.evaluate(async ([m, u, b]) => {
    const headers = { 'Content-Type': 'application/json', 'X-CSRF-Token': sessionStorage.getItem('gh_csrf') || '' };
    const r = await fetch(`/api/v1${u}`, { method: m, headers, body: b === null ? undefined : JSON.stringify(b) });
    let json = null;
    try {
      json = await r.json();
    } catch {
      json = null;
    }
    return { status: r.status, json };
  }, [method, p, body === undefined ? null : body]);
}

/** A CSV file's rows (RFC 4180: quotes, doubled quotes, commas and line breaks in quotes). */
function parseCsv(text) {
  const rows = [];
  let row = [];
  let cell = '';
  let q = false;
  const s = text.replace(/^\uFEFF/, '');
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (q) {
      if (c === '"' && s[i + 1] === '"') { cell += '"'; i++; } else if (c === '"') q = false; else cell += c;
    } else if (c === '"') q = true;
    else if (c === ',') { row.push(cell); cell = ''; } else if (c === '\n' || c === '\r') {
      if (c === '\r' && s[i + 1] === '\n') i++;
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
    } else cell += c;
  }
  if (cell !== '' || row.length) { row.push(cell); rows.push(row); }
  return rows.filter((r) => r.length > 1 || r[0] !== '');
}

/* ---- scenarios ---- */

const SCENARIOS = {};

SCENARIOS.login = async () => {
  const page = await newPage();
  current = page;
  const [user, [, password]] = Object.entries(USERS).find(([, [role]]) => role === 'admin');
  await check('login: a fresh tab shows the login form', async () => {
    await page.goto('/');
    await page.locator('#login-user').waitFor();
    assert(await page.locator('#nav').count() === 0, 'the navigation shows before logging in');
    assert(/Log in/.test(await page.title()), `title ${await page.title()}`);
  });
  await check('login: a wrong password shows the error and keeps the login form', async () => {
    await fillLogin(page, user, `${password}-wrong`);
    const err = page.locator('[data-test=login-error]');
    await page.waitForFunction(() => document.querySelector('[data-test=login-error]').textContent.trim() !== '');
    const text = await err.textContent();
    assert(/wrong user name or password/i.test(text), `error text: ${text}`);
    assert(await page.locator('#login-password').inputValue() === '', 'the wrong password stays in the field');
    assert(await page.locator('#nav').count() === 0, 'logged in with a wrong password');
  });
  await check('login: the right password lands on the dashboard, naming the user and role', async () => {
    await fillLogin(page, user, password);
    await heading(page, 'Dashboard');
    const who = await page.locator('[data-test=current-user]').textContent();
    assert(who.includes(user) && /admin/i.test(who), `current user: ${who}`);
    assert(await page.locator('[data-test=nav-users]').isVisible(), 'an admin sees the Users page in the navigation');
    await page.locator('header .site', { hasText: SITE_NAME }).waitFor();
  });
  sessions[user] = page;
};

SCENARIOS.live = async () => {
  const page = await session('ada');
  current = page;
  await go(page, 'dashboard');
  await check('live: the dashboard connects to the live feed', async () => {
    await page.locator('[data-test=live-state]', { hasText: 'Live' }).waitFor();
    await page.locator('[data-test=event-feed] li[data-type=hello]').first().waitFor();
  });
  await check('live: the site status shows the door phone online and the relay board', async () => {
    await page.locator('[data-test=card-devices]', { hasText: '1 / 1' }).waitFor();
    await page.locator(`[data-test=dashboard-boards] tr`, { hasText: 'Gate board' }).locator('.badge.ok').waitFor();
  });
  // the page must not reload: a mark left in it must still be there at the end
  await page.evaluate(() => { window.ghNoReload = 'still-here'; });
  const feed = page.locator('[data-test=event-feed]');
  await check('live: a granted PIN at the door phone appears in the feed at once', async () => {
    const r = await ctl('POST', '/device/request', { method: 'pin', code: '2468', relay: 1 });
    assert(r.ok && r.granted === true, `access.check answered ${JSON.stringify(r)}`);
    const li = feed.locator('li[data-type=event][data-log=door]', { hasText: r.person || 'Anna Berger' }).first();
    await li.waitFor();
    const text = await li.textContent();
    assert(/success/.test(text) && /Entrance/.test(text), `feed line: ${text}`);
  });
  await check('live: a refused PIN appears with its reason', async () => {
    const r = await ctl('POST', '/device/request', { method: 'pin', code: '1357' });
    assert(r.ok && r.granted === false, `access.check answered ${JSON.stringify(r)}`);
    const reason = String(r.reason || '').replace(/_/g, ' ');
    const li = feed.locator('li[data-type=event][data-log=door]', { hasText: reason }).first();
    await li.waitFor();
    assert(/failed/.test(await li.textContent()), await li.textContent());
  });
  await check('live: an alarm the door phone sends appears in the feed', async () => {
    await ctl('POST', '/device/event', { type: 'alarm', kind: 'tamper', state: 'triggered', zone: 'Z-live' });
    const li = feed.locator('li[data-type=event][data-log=alarm]', { hasText: 'Z-live' }).first();
    await li.waitFor();
    assert(/tamper alarm triggered/.test(await li.textContent()), await li.textContent());
  });
  await check('live: without reloading the page', async () =>
    (await page.evaluate(() => window.ghNoReload)) === 'still-here');
  await check('live: the feed keeps its lines across a visit to another page', async () => {
    await go(page, 'logs');
    await ctl('POST', '/device/event', { type: 'alarm', kind: 'tamper', state: 'cleared', zone: 'Z-away' });
    await until(async () => (await inPage(page, 'GET', '/logs/alarms?limit=50')).json.items.some((a) => a.zone === 'Z-away'),
      'the alarm in the alarm log');
    await go(page, 'dashboard');
    await feed.locator('li[data-log=alarm]', { hasText: 'Z-live' }).waitFor();
    await feed.locator('li[data-log=alarm]', { hasText: 'Z-away' }).waitFor();
  });
  await check('live: "Pause" holds new lines and counts them, "Resume" shows them', async () => {
    const button = page.locator('[data-test=feed-pause]');
    await button.click();
    await ctl('POST', '/device/event', { type: 'alarm', kind: 'tamper', state: 'triggered', zone: 'Z-paused' });
    await button.filter({ hasText: /Resume \([1-9][0-9]* waiting\)/ }).waitFor();
    assert(!(await feed.locator('li', { hasText: 'Z-paused' }).count()), 'a line arrived while paused');
    await button.click();
    await feed.locator('li[data-log=alarm]', { hasText: 'Z-paused' }).waitFor();
    await button.filter({ hasText: 'Pause' }).waitFor();
  });
  await check('live: after a dropped connection the feed reconnects from the last event it saw, missing nothing', async () => {
    const urls = [];
    page.on('websocket', (w) => urls.push(w.url()));
    await page.evaluate(() => window.ghSockets[window.ghSockets.length - 1].close());
    await ctl('POST', '/device/event', { type: 'alarm', kind: 'tamper', state: 'triggered', zone: 'Z-gap' });
    await page.locator('[data-test=live-state]', { hasText: 'Live' }).waitFor();
    await feed.locator('li[data-log=alarm]', { hasText: 'Z-gap' }).waitFor();
    await until(async () => urls.some((u) => /[?&]door=\d+/.test(u) && /alarm=\d+/.test(u)), 'a reconnect naming the last ids');
    assert(await feed.locator('li[data-log=alarm]', { hasText: 'Z-gap' }).count() === 1, 'the missed alarm shows twice');
  });
};

SCENARIOS.devices = async () => {
  const page = await session('ada');
  current = page;
  await go(page, 'devices');
  const row = page.locator(`[data-test=list-devices] tr[data-id="${DEV}"]`);
  await check('devices: the door phone is listed with its relay', async () => {
    await row.filter({ hasText: 'Entrance' }).waitFor();
    await row.locator(`[data-test=open-relay][data-relay="1"]`).waitFor();
  });
  const before = (await device()).commands.length;
  await check('devices: "Open" on its relay says the command was sent', async () => {
    await row.locator(`[data-test=open-relay][data-relay="1"]`).click();
    await notice(page, 'Open sent to relay 1 of Entrance');
  });
  await check('devices: and the door phone receives relay.open for relay 1', async () => {
    const cmd = await until(async () => (await device()).commands.slice(before)
      .find((c) => c.op === 'relay.open' && Number(c.relay) === 1), 'the relay.open command at the door phone');
    assert(cmd.cid, JSON.stringify(cmd));
  });
  const state = row.locator('[data-test=device-state] .badge');
  await check('devices: the door phone shows Online', async () => {
    await state.filter({ hasText: 'Online' }).waitFor();
  });
  await check('devices: switched off, it shows Offline without a reload (dashboard count too)', async () => {
    await ctl('POST', '/device/stop');
    await state.filter({ hasText: 'Offline' }).waitFor();
    await go(page, 'dashboard');
    await page.locator('[data-test=card-devices]', { hasText: '0 / 1' }).waitFor();
  });
  await check('devices: switched on again, Online again', async () => {
    assert((await ctl('POST', '/device/start')).ok, 'the door phone did not log in again');
    await page.locator('[data-test=card-devices]', { hasText: '1 / 1' }).waitFor();
    await go(page, 'devices');
    await state.filter({ hasText: 'Online' }).waitFor();
  });
};

SCENARIOS.boards = async () => {
  const page = await session('ada');
  current = page;
  await go(page, 'boards');
  const row = page.locator(`[data-test=list-relay_boards] tr[data-id="${BOARD}"]`);
  await check('boards: the relay board is listed online on its bus', async () => {
    await row.locator('[data-test=board-state] .badge.ok', { hasText: 'Online' }).waitFor();
    await page.locator('[data-test=bus]', { hasText: 'Gate board' }).locator('.badge.ok').waitFor();
  });
  const before = (await board()).writes;
  await check('boards: "Open" on a channel says it opened', async () => {
    await row.locator(`[data-test=open-channel][data-channel="2"]`).click();
    await notice(page, 'Side gate of Gate board opened');
  });
  await check("boards: the board's relay 2 switches on, then off after the hold time", async () => {
    await until(async () => {
      const h = ((await board()).history['2'] || []).filter(([seq]) => seq > before);
      const on = h.findIndex(([, v]) => v);
      return on >= 0 && h.slice(on + 1).some(([, v]) => !v);
    }, 'an on write then an off write to channel 2 at the simulator');
    const other = ((await board()).history['1'] || []).filter(([seq, v]) => seq > before && v);
    assert(!other.length, 'channel 1 switched too');
  });
};

SCENARIOS.import = async () => {
  const page = await session('max'); // a property manager imports residents
  current = page;
  await go(page, 'people');
  const rows = parseCsv(fs.readFileSync(CSV, 'utf8'));
  const head = rows[0];
  const data = rows.slice(1);
  const first = head.indexOf('First Name');
  await check('import: the people page offers the CSV import', async () => {
    await page.locator('[data-test=import-form]').waitFor();
    await page.locator('[data-test=import-template]').waitFor();
  });
  await check('import: choosing nothing says to choose a file', async () => {
    await page.locator('[data-test=import-submit]').click();
    await page.locator('#import-error', { hasText: 'Choose a CSV file' }).waitFor();
  });
  let report;
  await check(`import: ${path.basename(CSV)} shows the import report`, async () => {
    await page.locator('#import-file').setInputFiles(CSV);
    await page.locator('[data-test=import-submit]').click();
    await page.locator('[data-test=import-report]').waitFor();
    const num = async (k) => {
      const l = page.locator(`[data-test=import-${k}]`);
      return (await l.count()) ? Number(await l.textContent()) : undefined;
    };
    report = { rows: await num('rows'), imported: await num('imported'), failed: await num('failed'),
      title: await page.locator('[data-test=import-report] h3').textContent() };
    assert(report.rows === data.length, `rows read ${report.rows}, the file has ${data.length}: ${JSON.stringify(report)}`);
    assert(report.failed === 0 && report.imported === data.length && /Import finished/.test(report.title),
      JSON.stringify(report));
  });
  await check('import: the imported people appear in the list', async () => {
    const list = page.locator('[data-test=list-persons]');
    for (const r of data) await list.locator('tr', { hasText: r[first] }).first().waitFor();
  });
  await check('import: and they are stored (one person per row)', async () => {
    const r = await inPage(page, 'GET', '/persons?limit=1000');
    const names = r.json.items.map((p) => p.first_name);
    const missing = data.map((d) => d[first]).filter((n) => !names.includes(n));
    return !missing.length || `missing ${missing}`;
  });
};

SCENARIOS.logs = async () => {
  const page = await session('ada');
  current = page;
  // a door log row of its own: a granted PIN at the door phone
  const r = await ctl('POST', '/device/request', { method: 'pin', code: '2468', relay: 1 });
  // and a remote open of a board channel by this user
  const opened = await inPage(page, 'POST', `/relay_boards/${BOARD}/channels/1/open`, {});
  await go(page, 'logs');
  const table = page.locator('[data-test=log-table]');
  await check('logs: the door log lists the access decisions', async () => {
    assert(r.ok && r.granted, `access.check: ${JSON.stringify(r)}`);
    await table.locator('tbody tr', { hasText: r.person || 'Anna Berger' }).first().waitFor();
  });
  await check("logs: and the remote open, naming the board and who opened it", async () => {
    assert(opened.status === 200, `open: ${opened.status}`);
    const row = table.locator('tbody tr', { hasText: 'Gate board' }).filter({ hasText: 'channel 1' }).first();
    await row.waitFor();
    assert(/ada/.test(await row.textContent()), await row.textContent());
  });
  const api = await inPage(page, 'GET', '/logs/door?limit=1000');
  let csv;
  await check('logs: "Export CSV" downloads the log as a CSV file', async () => {
    const [dl] = await Promise.all([page.waitForEvent('download'), page.locator('[data-test=export-csv]').click()]);
    assert(/\.csv$/.test(dl.suggestedFilename()), `file name ${dl.suggestedFilename()}`);
    const file = path.join(os.tmpdir(), `door-${Date.now()}.csv`);
    await dl.saveAs(file);
    csv = parseCsv(fs.readFileSync(file, 'utf8'));
  });
  await check('logs: with the header and one row per log entry', async () => {
    const h = csv[0];
    for (const col of ['id', 'ts', 'type', 'device', 'result']) assert(h.includes(col), `header ${h}`);
    assert(api.status === 200, `GET /logs/door: ${api.status}`);
    const ids = csv.slice(1).map((x) => Number(x[h.indexOf('id')])).sort();
    const want = api.json.items.map((x) => x.id).sort();
    assert(JSON.stringify(ids) === JSON.stringify(want), `CSV ids ${ids} / log ids ${want}`);
    assert(csv.slice(1).some((x) => x.join(',').includes(r.person || 'Anna Berger') &&
      x[h.indexOf('result')] === 'success'), 'the granted PIN is not in the file');
  });
  await check('logs: a result filter narrows the table and the export', async () => {
    await page.locator('[data-test=filter-result]').selectOption('success');
    await page.locator('[data-test=filter-apply]').click();
    await until(async () => {
      const results = await table.locator('tbody tr td[data-label=Result]').allTextContents();
      return results.length && results.every((t) => t.startsWith('success'));
    }, 'only successful rows in the table');
    const href = await page.locator('[data-test=export-csv]').getAttribute('href');
    assert(/result=success/.test(href) && /format=csv/.test(href), href);
    const [dl] = await Promise.all([page.waitForEvent('download'), page.locator('[data-test=export-csv]').click()]);
    const file = path.join(os.tmpdir(), `door-ok-${Date.now()}.csv`);
    await dl.saveAs(file);
    const rows = parseCsv(fs.readFileSync(file, 'utf8'));
    const col = rows[0].indexOf('result');
    assert(rows.length > 1 && rows.slice(1).every((x) => x[col] === 'success'), `${rows.length - 1} rows`);
  });
};

SCENARIOS.alarms = async () => {
  const page = await session('ada');
  current = page;
  await ctl('POST', '/device/event', { type: 'alarm', kind: 'tamper', state: 'triggered', zone: 'Z-solve' });
  const row = page.locator('[data-test=alarm-table] tbody tr', { hasText: 'Z-solve' });
  await check('alarms: a new alarm from the door phone is listed unsolved', async () => {
    await until(async () => {
      const r = await inPage(page, 'GET', '/logs/alarms?limit=50');
      return r.json.items.some((a) => a.zone === 'Z-solve');
    }, 'the alarm in the alarm log');
    await go(page, 'alarms');
    await row.locator('[data-test=solve-alarm]').waitFor();
  });
  await check('alarms: "Mark solved" marks it solved by the user', async () => {
    await row.locator('[data-test=solve-alarm]').click();
    await notice(page, 'Alarm marked as solved');
    await row.locator('td[data-label=Solved]', { hasText: 'Yes, by ada' }).waitFor();
    const r = await inPage(page, 'GET', '/logs/alarms?limit=50');
    const a = r.json.items.find((x) => x.zone === 'Z-solve');
    assert(a && a.solved && a.solved_by === 'ada', JSON.stringify(a));
  });
};

SCENARIOS.emergency = async () => {
  const page = await session('max'); // the property manager
  const watcher = await session('ada'); // someone else with the dashboard open
  current = page;
  await go(watcher, 'dashboard');
  await watcher.locator('[data-test=live-state]', { hasText: 'Live' }).waitFor();
  await go(page, 'dashboard');
  const banner = page.locator('[data-test=emergency-banner]');
  const state = page.locator('[data-test=emergency-state]');
  await check('emergency: the dashboard shows it off, with no banner', async () => {
    await state.filter({ hasText: 'Off' }).waitFor();
    assert(!(await banner.count()), 'a banner shows');
  });
  let before = (await device()).commands.length;
  let boardBefore = (await board()).writes;
  await check('emergency: "Emergency: unlock doors" asks which doors, then turns it on', async () => {
    await page.locator('#emergency-button').click();
    await page.locator('[data-test=emergency-dialog]').waitFor();
    await page.locator('[data-test=emergency-doors-all]').check();
    await page.locator('[data-test=emergency-confirm]').click();
    await banner.waitFor();
    await state.filter({ hasText: 'ON' }).waitFor();
    await page.locator('#emergency-button', { hasText: 'End emergency' }).waitFor();
  });
  await check('emergency: the server status says emergency on', async () =>
    (await inPage(page, 'GET', '/status')).json.emergency === true);
  await check('emergency: the banner shows on the other pages too', async () => {
    await go(page, 'people');
    await banner.waitFor();
  });
  await check("emergency: another user's open dashboard shows it live", async () => {
    await watcher.locator('[data-test=emergency-banner]').waitFor();
    await watcher.locator('[data-test=emergency-state]', { hasText: 'ON' }).waitFor();
  });
  await check('emergency: the door phone is told, and the door relay on the board is held open', async () => {
    await until(async () => (await device()).commands.slice(before).some((c) => c.op === 'emergency' && c.state === 'on'),
      'the emergency command at the door phone');
    await until(async () => ((await board()).history['2'] || []).some(([seq, v]) => seq > boardBefore && v),
      'channel 2 on at the board');
  });
  before = (await device()).commands.length;
  boardBefore = (await board()).writes;
  await check('emergency: ending it removes the banner', async () => {
    await go(page, 'dashboard');
    await page.locator('#emergency-button', { hasText: 'End emergency' }).click();
    await page.locator('[data-test=emergency-dialog]').waitFor();
    await page.locator('[data-test=emergency-confirm]').click();
    await banner.waitFor({ state: 'detached' });
    await state.filter({ hasText: 'Off' }).waitFor();
    await watcher.locator('[data-test=emergency-banner]').waitFor({ state: 'detached' });
  });
  await check('emergency: the server status says off, the door phone and the board are released', async () => {
    assert((await inPage(page, 'GET', '/status')).json.emergency === false, 'status still says on');
    await until(async () => (await device()).commands.slice(before).some((c) => c.op === 'emergency' && c.state === 'off'),
      'the emergency off command at the door phone');
    await until(async () => (await board()).on['2'] === false, 'channel 2 off at the board');
  });
};

SCENARIOS.viewer = async () => {
  const page = await session('vic');
  current = page;
  const MUTATORS = ['[data-test^="add-"]', '[data-test=delete]', '[data-test=open-relay]', '[data-test=open-channel]',
    '[data-test=solve-alarm]', '#emergency-button', '[data-test=import-form]', '[data-test=form-submit]',
    '[data-test=reset-apartment]', '[data-test=device-command]'];
  await check('viewer: no Users page in the navigation', async () => {
    await page.locator('[data-test=nav-dashboard]').waitFor();
    return (await page.locator('[data-test=nav-users]').count()) === 0;
  });
  await check('viewer: the dashboard says the role cannot trigger an emergency', async () => {
    await go(page, 'dashboard');
    await page.locator('.emergency', { hasText: 'cannot trigger' }).waitFor();
  });
  for (const id of PAGES.filter((p) => p !== 'users')) {
    await check(`viewer: ${id} shows no button that changes anything`, async () => {
      await go(page, id);
      if (id === 'devices') await page.locator(`[data-test=list-devices] tr[data-id="${DEV}"]`).waitFor();
      if (id === 'boards') await page.locator(`[data-test=list-relay_boards] tr[data-id="${BOARD}"]`).waitFor();
      if (id === 'people' || id === 'buildings') await page.locator('[data-test=edit]').first().waitFor();
      if (id === 'settings') await page.locator('[data-test=settings-form]').waitFor();
      const found = [];
      for (const sel of MUTATORS) if (await page.locator(sel).count()) found.push(sel);
      assert(!found.length, `found ${found}`);
    });
  }
  await check('viewer: a device opens read-only ("View", no save)', async () => {
    await go(page, 'devices');
    const view = page.locator(`[data-test=list-devices] tr[data-id="${DEV}"] [data-test=edit]`);
    assert((await view.textContent()).trim() === 'View', await view.textContent());
    await view.click();
    const dlg = page.locator('[data-test=dialog-devices]');
    await dlg.waitFor();
    assert(await dlg.locator('[data-test=field-name]').isDisabled(), 'the name can be edited');
    assert(!(await dlg.locator('[data-test=form-submit]').count()), 'a save button');
    await page.keyboard.press('Escape');
    await dlg.waitFor({ state: 'detached' });
  });
  const before = (await device()).commands.length;
  await check('viewer: forced changes with its own CSRF token are refused with 403', async () => {
    const tries = [
      ['POST', '/emergency', { state: 'on' }],
      ['POST', `/devices/${DEV}/relays/1/open`, {}],
      ['POST', `/relay_boards/${BOARD}/channels/2/open`, {}],
      ['POST', '/persons', { kind: 'resident', apartment: 'a101', first_name: 'Mallory' }],
      ['DELETE', '/persons/p1'],
    ];
    const got = [];
    for (const [m, p, b] of tries) got.push(`${m} ${p}: ${(await inPage(page, m, p, b)).status}`);
    assert(got.every((g) => g.endsWith(': 403')), got.join('; '));
  });
  await check('viewer: and nothing happened (no emergency, no command, no new person)', async () => {
    const st = await inPage(page, 'GET', '/status');
    assert(st.json.emergency === false, 'emergency is on');
    const persons = await inPage(page, 'GET', '/persons?limit=1000');
    assert(!persons.json.items.some((p) => p.first_name === 'Mallory'), 'Mallory was added');
    assert((await inPage(page, 'GET', '/persons/p1')).status === 200, 'p1 was deleted');
    const cmds = (await device()).commands.slice(before);
    assert(!cmds.length, `the door phone got ${JSON.stringify(cmds)}`);
  });
};

/** Every page, on a desktop and a phone: a screenshot each, the heading, no error, no sideways scrolling on the phone. */
SCENARIOS.pages = async () => {
  for (const [vp, size] of [['desktop', DESKTOP], ['phone', PHONE]]) {
    const extra = vp === 'phone' ? { isMobile: true, hasTouch: true, deviceScaleFactor: 2 } : {};
    const page = await newPage(size, extra);
    current = page;
    const shot = (name, fullPage = true) => page.screenshot({ path: path.join(ART, `${name}-${vp}.png`), fullPage });
    const wide = () => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    await check(`pages (${vp}): login`, async () => {
      await page.goto('/');
      await page.locator('#login-user').waitFor();
      await shot('login');
      if (vp === 'phone') assert(await wide() <= 0, `scrolls sideways by ${await wide()} px`);
      await fillLogin(page, 'ada', USERS.ada[1]);
      await heading(page, 'Dashboard');
    });
    if (vp === 'phone') {
      await check('pages (phone): the navigation opens behind Menu and closes after a choice', async () => {
        const nav = page.locator('#nav');
        assert(!(await nav.locator('[data-test=nav-logs]').isVisible()), 'the navigation is open at first');
        await page.locator('[data-test=nav-toggle]').click();
        await nav.locator('[data-test=nav-logs]').click();
        await heading(page, 'Logs');
        await nav.locator('[data-test=nav-logs]').waitFor({ state: 'hidden' });
      });
    }
    for (const id of PAGES) {
      await check(`pages (${vp}): ${id}`, async () => {
        await go(page, id);
        if (id === 'dashboard') await page.locator('[data-test=card-devices]').waitFor();
        const errors = await page.locator('.load-error').allTextContents();
        assert(!errors.length, `the page shows an error: ${errors}`);
        await shot(id);
        if (vp === 'phone') assert(await wide() <= 0, `scrolls sideways by ${await wide()} px`);
      });
    }
    await check(`pages (${vp}): a person's credentials`, async () => {
      await page.goto('/#/people?person=p1');
      await heading(page, 'Anna Berger');
      await page.locator('[data-test=list-credentials] tr', { hasText: '2468' }).waitFor();
      await shot('person');
      if (vp === 'phone') assert(await wide() <= 0, `scrolls sideways by ${await wide()} px`);
    });
    await check(`pages (${vp}): the device dialog`, async () => {
      await go(page, 'devices');
      await page.locator(`[data-test=list-devices] tr[data-id="${DEV}"] [data-test=edit]`).click();
      await page.locator('[data-test=dialog-devices]').waitFor();
      await shot('device-dialog', false); // what the screen shows: a modal covers the viewport
      await page.keyboard.press('Escape');
      await page.locator('[data-test=dialog-devices]').waitFor({ state: 'detached' });
    });
    await page.context().close();
  }
};

SCENARIOS.logout = async () => {
  const page = await session('ada');
  current = page;
  await check('logout: "Log out" shows the login form', async () => {
    await page.locator('[data-test=logout]').click();
    await page.locator('#login-user').waitFor();
    assert(!(await page.locator('#nav').count()), 'the navigation still shows');
  });
  await check('logout: the session is gone on the server (401), and a reload stays logged out', async () => {
    const r = await inPage(page, 'GET', '/status');
    assert(r.status === 401, `status ${r.status}`);
    await page.reload();
    await page.locator('#login-user').waitFor();
  });
  delete sessions.ada;
  await check("logout: the next user of the tab starts with an empty feed (not the last user's events)", async () => {
    await fillLogin(page, 'max', USERS.max[1]);
    await heading(page, 'Dashboard');
    const feed = page.locator('[data-test=event-feed]');
    await feed.locator('li[data-type=hello]').waitFor();
    assert((await feed.locator('li[data-type=hello]').count()) === 1, 'more than one "connected" line');
    assert(!(await feed.locator('li', { hasText: 'Z-live' }).count()), 'the previous session\'s alarm is listed');
    await page.locator('[data-test=logout]').click();
    await page.locator('#login-user').waitFor();
  });
};

/* ---- main ---- */

async function main() {
  const wanted = process.argv.slice(2);
  const unknown = wanted.filter((s) => !SCENARIOS[s]);
  if (unknown.length) {
    console.error(`unknown scenario ${unknown}; known: ${Object.keys(SCENARIOS).join(' ')}`);
    process.exit(2);
  }
  const args = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--no-first-run', '--disable-sync', '--disable-quic'];
  // launch() gives Chromium a fresh --user-data-dir under TMPDIR (run.py points it into its run folder)
  browser = await chromium.launch({
    executablePath: process.env.GH_CHROMIUM || '/usr/bin/chromium',
    headless: !HEADED,
    args: HEADED ? args.filter((a) => a !== '--headless') : args,
    timeout: 60000,
  });
  for (const name of wanted.length ? wanted : Object.keys(SCENARIOS)) {
    console.log(`== web-ui: ${name}`);
    current = null;
    try {
      await SCENARIOS[name]();
    } catch (e) {
      if (!(e instanceof Stop)) fail(`${name}: ran to its end`, e.stack || e);
      else console.log(`        (the rest of ${name} is skipped)`);
    }
  }
  console.log('== web-ui: the browser console');
  try {
    await check('no uncaught script error, CSP violation or console error in any page', async () =>
      !problems.length || (() => { throw new Error(problems.slice(0, 5).join('\n')); })());
  } catch {
    // counted
  }
  await browser.close();
}

let finished = false;
try {
  await main();
  finished = true;
} catch (e) {
  fail('the browser starts and the scenarios run', e.stack || e);
  if (browser) await browser.close().catch(() => {});
}
if (process.env.GH_RESULTS) fs.writeFileSync(process.env.GH_RESULTS, JSON.stringify({ ...counts, finished }));
process.exit(counts.failed ? 1 : 0);
