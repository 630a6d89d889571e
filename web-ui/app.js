// The app shell: who is logged in, hash routes (#/page?query), the
// navigation (collapsible on a phone), live WAN and emergency state.
import { render } from './vendor/preact.module.js';
import { useState, useEffect } from './vendor/hooks.module.js';
import * as api from './api.js';
import * as ws from './ws.js';
import { html, Session, can, Notices, href, navigate } from './lib/ui.js';
import { Login } from './pages/login.js';
import { Dashboard } from './pages/dashboard.js';
import { Buildings } from './pages/buildings.js';
import { People } from './pages/people.js';
import { Groups } from './pages/groups.js';
import { Devices } from './pages/devices.js';
import { Boards } from './pages/boards.js';
import { Logs } from './pages/logs.js';
import { Alarms } from './pages/alarms.js';
import { Conflicts } from './pages/conflicts.js';
import { Settings } from './pages/settings.js';
import { Users } from './pages/users.js';

const PAGES = [
  { id: 'dashboard', title: 'Dashboard', Page: Dashboard },
  { id: 'buildings', title: 'Buildings & apartments', Page: Buildings },
  { id: 'people', title: 'People & credentials', Page: People },
  { id: 'groups', title: 'Access groups & temp keys', Page: Groups },
  { id: 'devices', title: 'Devices & relays', Page: Devices },
  { id: 'boards', title: 'Boards & buses', Page: Boards },
  { id: 'logs', title: 'Logs', Page: Logs },
  { id: 'alarms', title: 'Alarms', Page: Alarms },
  { id: 'conflicts', title: 'Conflicts', Page: Conflicts },
  { id: 'settings', title: 'Settings', Page: Settings },
  { id: 'users', title: 'Users', Page: Users, need: 'site' },
];

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, q = ''] = raw.split('?');
  return { page: path.split('/')[0] || 'dashboard', query: Object.fromEntries(new URLSearchParams(q)), key: raw };
}

const ROLE_NAMES = { admin: 'Installer (admin)', manager: 'Property manager', viewer: 'Viewer (read only)' };

function App() {
  const [route, setRoute] = useState(parseHash);
  const [auth, setAuth] = useState({ state: 'checking' });
  const [settings, setSettings] = useState(null);
  const [menuOpen, setMenuOpen] = useState(false);
  const [live, setLive] = useState({ wan: null, emergency: false, conn: ws.getState() });

  useEffect(() => {
    const on = () => {
      setRoute(parseHash());
      setMenuOpen(false);
    };
    window.addEventListener('hashchange', on);
    api.setUnauthorizedHandler(() => {
      ws.stop();
      api.setCsrf(null);
      setAuth({ state: 'out', expired: true });
    });
    // A reloaded tab still has its CSRF token: ask whether the session lives.
    // A fresh tab goes straight to the login page (no 401 in the console).
    if (!api.hasCsrf()) setAuth({ state: 'out' });
    else {
      api.get('/me', undefined, { noRedirect: true }).then(
        (me) => {
          api.setCsrf(me.csrf);
          setAuth({ state: 'in', user: me.user, role: me.role });
        },
        () => {
          api.setCsrf(null);
          setAuth({ state: 'out' });
        },
      );
    }
    return () => window.removeEventListener('hashchange', on);
  }, []);

  useEffect(() => {
    if (auth.state !== 'in') return undefined;
    ws.start();
    api.get('/settings').then((s) => setSettings(s && s.items ? s.items[0] : s), () => {});
    api.get('/status').then((s) => setLive((l) => ({ ...l, wan: s.wan, emergency: !!s.emergency })), () => {});
    const offMsg = ws.subscribe((m) => {
      if (m.type === 'wan') setLive((l) => ({ ...l, wan: m.state }));
      if (m.type === 'emergency') setLive((l) => ({ ...l, emergency: !!m.on }));
      if (m.type === 'hello') setLive((l) => ({ ...l, wan: m.wan || l.wan, emergency: !!m.emergency }));
    });
    const offState = ws.onState((conn) => setLive((l) => ({ ...l, conn })));
    return () => {
      offMsg();
      offState();
    };
  }, [auth.state]);

  const page = PAGES.find((p) => p.id === route.page);
  useEffect(() => {
    document.title = `${auth.state === 'in' ? (page ? page.title : 'Not found') : 'Log in'} - gatehouse`;
    const t = setTimeout(() => {
      // never steal the focus from a field someone (or a test) already typed in
      const a = document.activeElement;
      const typing = a && a.closest('main') && a.matches('input, select, textarea');
      const h = document.getElementById('page-heading');
      if (h && !typing && !document.querySelector('dialog[open]')) h.focus();
    }, 0);
    return () => clearTimeout(t);
  }, [route.page, auth.state]);

  if (auth.state === 'checking') return html`<p class="loading" role="status">Loading...</p>`;
  if (auth.state === 'out') {
    return html`<main id="main" class="login-main">
      <${Login} expired=${auth.expired} onLogin=${(who) => {
        api.setCsrf(who.csrf);
        setAuth({ state: 'in', user: who.user, role: who.role });
        if (route.page === 'login') navigate('dashboard');
      }} />
      <${Notices} />
    </main>`;
  }

  async function logout() {
    try {
      await api.post('/logout', {}, { noRedirect: true });
    } catch {
      // the session is dropped here either way
    }
    ws.stop();
    api.setCsrf(null);
    setAuth({ state: 'out' });
    navigate('login');
  }

  const session = { user: auth.user, role: auth.role, settings, setSettings };
  const visible = PAGES.filter((p) => !p.need || can(auth.role, p.need));
  let body;
  if (route.page === 'login') body = html`<${Redirect} to="dashboard" />`;
  else if (!page) body = html`<${NotFound} />`;
  else if (page.need && !can(auth.role, page.need)) body = html`<${Forbidden} title=${page.title} />`;
  else body = html`<${page.Page} key=${page.id} query=${route.query} live=${live} setLive=${setLive} />`;

  return html`<${Session.Provider} value=${session}>
    <button type="button" class="skip" onClick=${() => document.getElementById('page-heading')?.focus()}>Skip to content</button>
    <header class="top">
      <button type="button" class="menu-toggle" aria-expanded=${menuOpen ? 'true' : 'false'} aria-controls="nav"
        data-test="nav-toggle" onClick=${() => setMenuOpen(!menuOpen)}>Menu</button>
      <a class="brand" href=${href('dashboard')}>gatehouse${settings && settings.name ? html`<span class="site"> ${settings.name}</span>` : ''}</a>
      <div class="top-status">
        <span class=${`pill wan-${live.wan || 'unknown'}`} data-test="wan-state">Cloud: ${live.wan || '...'}</span>
        <span class=${`pill conn-${live.conn}`} data-test="live-state">${live.conn === 'open' ? 'Live' : 'Reconnecting'}</span>
      </div>
      <div class="who">
        <span data-test="current-user">${auth.user || ''} <span class="role">${ROLE_NAMES[auth.role] || auth.role}</span></span>
        <button type="button" data-test="logout" onClick=${logout}>Log out</button>
      </div>
    </header>
    ${live.emergency && html`<div class="emergency-banner" role="alert" data-test="emergency-banner">
      Emergency unlock is ON: emergency doors are held open. <a href=${href('dashboard')}>Go to the dashboard</a>
    </div>`}
    <div class="layout">
      <nav id="nav" aria-label="Main" class=${menuOpen ? 'open' : ''}>
        <ul>
          ${visible.map((p) => html`<li><a href=${href(p.id)} data-test=${`nav-${p.id}`}
            aria-current=${p.id === route.page ? 'page' : undefined}>${p.title}</a></li>`)}
        </ul>
      </nav>
      <main id="main">${body}</main>
    </div>
    <${Notices} />
  </${Session.Provider}>`;
}

function Redirect({ to }) {
  useEffect(() => navigate(to), []);
  return null;
}

function NotFound() {
  return html`<h1 id="page-heading" tabindex="-1">Page not found</h1>
    <p>There is no such page. <a href=${href('dashboard')}>Go to the dashboard</a>.</p>`;
}

function Forbidden({ title }) {
  return html`<h1 id="page-heading" tabindex="-1">${title}</h1>
    <p>This page needs the installer (admin) role.</p>`;
}

render(html`<${App} />`, document.getElementById('app'));
