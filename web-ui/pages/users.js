// Users of the local UI: GET/POST /api/v1/users, DELETE /api/v1/users/{name}. Admin only.
import { useState } from '../vendor/hooks.module.js';
import * as api from '../api.js';
import { html, useSession, useAsync, PageHead, DataTable, LoadError, Dialog, Confirm, notify } from '../lib/ui.js';
import { Form } from '../lib/form.js';

const ROLES = [['viewer', 'Viewer (read only)'], ['manager', 'Property manager'], ['admin', 'Installer (admin)']];

const fields = [
  { name: 'name', label: 'User name', required: true, maxLength: 64, autocomplete: 'off' },
  { name: 'role', label: 'Role', type: 'select', options: ROLES,
    help: 'Property managers handle people, credentials, groups, logs, doors and emergencies; installers also devices, boards, settings and users.' },
  { name: 'password', label: 'Password', type: 'password', required: true, autocomplete: 'new-password', help: 'At least 8 characters.' },
  { name: 'confirm', label: 'Password again', type: 'password', required: true, autocomplete: 'new-password' },
];

export function Users() {
  const { user } = useSession();
  const r = useAsync(() => api.list('/users'), []);
  const [adding, setAdding] = useState(false);
  const [deleting, setDeleting] = useState(null);
  const items = ((r.data && r.data.items) || []).map((u) => ({ ...u, id: u.name }));

  async function add(v) {
    if (v.password !== v.confirm) {
      const e = new Error('The two passwords differ.');
      e.field = 'confirm';
      throw e;
    }
    if (String(v.password).length < 8) {
      const e = new Error('Use at least 8 characters.');
      e.field = 'password';
      throw e;
    }
    await api.post('/users', { name: v.name, role: v.role, password: v.password });
    setAdding(false);
    notify(`User ${v.name} added.`);
    r.reload();
  }

  const cols = [
    { label: 'User', render: (u) => u.name },
    { label: 'Role', render: (u) => (ROLES.find(([k]) => k === u.role) || [u.role, u.role])[1] },
    { label: 'Actions', render: (u) => (u.name === user
      ? html`<span class="help">you</span>`
      : html`<button type="button" class="danger-link" data-test="delete-user" data-id=${u.name}
          aria-label=${`Delete user ${u.name}`} onClick=${() => setDeleting(u)}>Delete</button>`) },
  ];
  return html`<div>
    <${PageHead} title="Users">
      <button type="button" class="primary" data-test="add-user" onClick=${() => setAdding(true)}>Add user</button>
    </${PageHead}>
    <p class="lead">People who may log in to this gateway. Passwords can also be changed with <code>gatehouse user passwd NAME</code>.</p>
    <${LoadError} error=${r.error} retry=${r.reload} />
    ${r.loading ? html`<p class="loading" role="status">Loading...</p>` : html`<${DataTable} testId="user-table" caption="Users" columns=${cols} rows=${items} />`}
    ${adding && html`<${Dialog} title="Add user" onClose=${() => setAdding(false)} testId="dialog-users">
      <${Form} fields=${fields} initial=${{ role: 'manager' }} onSubmit=${add} onCancel=${() => setAdding(false)} submitLabel="Add user" />
    </${Dialog}>`}
    ${deleting && html`<${Confirm} title="Delete user?" confirmLabel=${`Delete ${deleting.name}`} danger onClose=${() => setDeleting(null)}
        onConfirm=${async () => {
          await api.del(`/users/${encodeURIComponent(deleting.name)}`);
          notify(`User ${deleting.name} deleted.`);
          r.reload();
        }}>
      <p>User <strong>${deleting.name}</strong> will no longer be able to log in.</p>
    </${Confirm}>`}
  </div>`;
}
