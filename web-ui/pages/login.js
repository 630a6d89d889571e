// Login: POST /api/v1/login {"user","password"} -> {"csrf","role"}.
import { useState } from '../vendor/hooks.module.js';
import * as api from '../api.js';
import { html } from '../lib/ui.js';

export function Login({ onLogin, expired }) {
  const [user, setUser] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState(expired ? 'Your session has ended. Please log in again.' : '');
  const [busy, setBusy] = useState(false);

  async function submit(e) {
    e.preventDefault();
    if (!user || !password) {
      setError('Enter your user name and password.');
      document.getElementById(user ? 'login-password' : 'login-user').focus();
      return;
    }
    setBusy(true);
    setError('');
    try {
      const r = await api.post('/login', { user, password }, { noRedirect: true });
      onLogin({ user: r.user || user, role: r.role, csrf: r.csrf });
    } catch (err) {
      setBusy(false);
      setPassword('');
      setError(err.status === 401 || err.status === 403 ? 'Wrong user name or password.' : err.message);
      document.getElementById('login-password').focus();
    }
  }

  return html`<div class="login-box">
    <h1 id="page-heading" tabindex="-1">gatehouse</h1>
    <p class="lead">Log in to administer this site's gateway.</p>
    <form onSubmit=${submit} novalidate data-test="login-form">
      <div class="field">
        <label for="login-user">User name</label>
        <input id="login-user" name="user" autocomplete="username" autocapitalize="none" spellcheck="false"
          value=${user} onInput=${(e) => setUser(e.target.value)} aria-describedby="login-error" />
      </div>
      <div class="field">
        <label for="login-password">Password</label>
        <input id="login-password" name="password" type="password" autocomplete="current-password"
          value=${password} onInput=${(e) => setPassword(e.target.value)} aria-describedby="login-error" />
      </div>
      <div id="login-error" class="form-error" role="alert" data-test="login-error">${error}</div>
      <div class="actions">
        <button id="login-submit" type="submit" class="primary" disabled=${busy}>${busy ? 'Logging in...' : 'Log in'}</button>
      </div>
    </form>
  </div>`;
}
