// A list of one entity with add / edit / delete, paged with `cursor`.
import { useState, useEffect, useId } from '../vendor/hooks.module.js';
import * as api from '../api.js';
import { html, Dialog, Confirm, DataTable, LoadError, notify, invalidate } from './ui.js';
import { Form } from './form.js';

/**
 * ENTITIES: the API collection ("buildings"). SINGULAR: "building".
 * COLUMNS: DataTable columns. FIELDS: form fields. CANEDIT: show add/edit/delete.
 * QUERY: list filters (also reload key). DEFAULTS: a new entity's values.
 * NAME(item): how a row is named in labels and messages.
 * ACTIONS(item, {update, remove}): extra row buttons. TOOLBAR: filters above the list.
 * BEFORESAVE(values, item): the body to send (default: values as edited).
 * AFTERSAVE(saved, isNew): called with the server's answer.
 */
export function EntitySection({
  entities, title, singular, columns, fields, canEdit, query = {}, defaults = {},
  name = (x) => x.name || x.id, actions, toolbar, beforeSave, level = 2, pageSize = 50,
  onChanged, afterSave, addLabel, empty,
}) {
  const headId = useId();
  const [items, setItems] = useState([]);
  const [next, setNext] = useState(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState(null);
  const [editing, setEditing] = useState(null); // {item, isNew}
  const [deleting, setDeleting] = useState(null);
  const key = JSON.stringify(query);

  async function load(cursor) {
    setLoading(true);
    setError(null);
    try {
      const filtered = Object.keys(query).length > 0;
      const page = filtered
        ? await api.listWhere(api.entityPath(entities), { ...query, limit: 200, cursor }, api.matches(query), pageSize)
        : await api.list(api.entityPath(entities), { limit: pageSize, cursor });
      setItems((old) => (cursor ? [...old, ...page.items] : page.items));
      setNext(page.next);
    } catch (e) {
      setError(e);
    }
    setLoading(false);
  }
  useEffect(() => {
    load(null);
  }, [entities, key]);

  const changed = () => {
    invalidate(entities);
    if (onChanged) onChanged();
  };
  const update = (item) => setItems((old) => old.map((x) => (x.id === item.id ? item : x)));
  const remove = (id) => setItems((old) => old.filter((x) => x.id !== id));

  async function save(values) {
    const { item, isNew } = editing;
    const body = beforeSave ? beforeSave(values, item) : values;
    const saved = isNew
      ? await api.post(api.entityPath(entities), body)
      : await api.put(api.entityPath(entities, item.id), body);
    const out = saved || { ...body, id: item.id };
    if (isNew) setItems((old) => [out, ...old]);
    else update(out);
    setEditing(null);
    changed();
    notify(`Saved ${singular} ${name(out)}.`);
    if (afterSave) afterSave(out, isNew);
  }

  async function doDelete() {
    await api.del(api.entityPath(entities, deleting.id));
    remove(deleting.id);
    changed();
    notify(`Deleted ${singular} ${name(deleting)}.`);
  }

  const rowButtons = {
    label: 'Actions',
    render: (x) => html`<div class="row-actions">
      <button type="button" data-test="edit" data-id=${x.id} aria-label=${`${canEdit ? 'Edit' : 'View'} ${singular} ${name(x)}`}
        onClick=${() => setEditing({ item: x, isNew: false })}>${canEdit ? 'Edit' : 'View'}</button>
      ${actions && actions(x, { update, remove })}
      ${canEdit && html`<button type="button" class="danger-link" data-test="delete" data-id=${x.id}
        aria-label=${`Delete ${singular} ${name(x)}`} onClick=${() => setDeleting(x)}>Delete</button>`}
    </div>`,
  };
  const H = `h${level}`;
  return html`<section class="section" aria-labelledby=${headId} data-test=${`section-${entities}`}>
    <div class="section-head">
      <${H} id=${headId}>${title}</${H}>
      ${canEdit && html`<button type="button" class="primary" data-test=${`add-${entities}`}
        onClick=${() => setEditing({ item: { ...defaults }, isNew: true })}>${addLabel || `Add ${singular}`}</button>`}
    </div>
    ${toolbar}
    <${LoadError} error=${error} retry=${() => load(null)} />
    ${!error && (items.length || !loading) && html`<${DataTable} columns=${[...columns, rowButtons]} rows=${items}
      caption=${title} testId=${`list-${entities}`} empty=${empty || `No ${singular}s yet.`} />`}
    ${loading && html`<p class="loading" role="status">Loading...</p>`}
    ${next && !loading && html`<button type="button" class="more" data-test="load-more" onClick=${() => load(next)}>Load more</button>`}
    ${editing && html`<${Dialog} title=${editing.isNew ? `Add ${singular}` : `${canEdit ? 'Edit' : 'View'} ${singular} ${name(editing.item)}`}
        onClose=${() => setEditing(null)} testId=${`dialog-${entities}`} wide>
      <${Form} fields=${fields} initial=${editing.item} onSubmit=${save} readOnly=${!canEdit} isNew=${editing.isNew}
        onCancel=${() => setEditing(null)} submitLabel=${editing.isNew ? `Add ${singular}` : 'Save changes'} />
    </${Dialog}>`}
    ${deleting && html`<${Confirm} title=${`Delete ${singular}?`} confirmLabel=${`Delete ${name(deleting)}`} danger
        onConfirm=${doDelete} onClose=${() => setDeleting(null)}>
      <p>Delete ${singular} <strong>${name(deleting)}</strong>? This cannot be undone here${entities === 'macs' ? '' : '; the change is also sent to the cloud'}.</p>
    </${Confirm}>`}
  </section>`;
}
