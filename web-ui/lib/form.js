// Forms from field lists. A field: {name (dotted path into the entity), label,
// type, options, help, required, min, max, maxLength, showIf(values),
// render(ctx) for custom editors}. Server errors ({"error":{"field"}})
// are shown next to the field they name, the rest above the buttons.
import { useState, useId, useRef } from '../vendor/hooks.module.js';
import { html, useSession, toLocalInput, fromLocalInput } from './ui.js';

export function getPath(obj, path) {
  let o = obj;
  for (const k of path.split('.')) {
    if (o === null || o === undefined) return undefined;
    o = o[k];
  }
  return o;
}

export function setPath(obj, path, value) {
  const keys = path.split('.');
  const out = { ...obj };
  let o = out;
  for (let i = 0; i < keys.length - 1; i++) {
    const k = keys[i];
    o[k] = o[k] && typeof o[k] === 'object' && !Array.isArray(o[k]) ? { ...o[k] } : {};
    o = o[k];
  }
  o[keys[keys.length - 1]] = value;
  return out;
}

/**
 * The field of NAMES that the server's error FIELD belongs to:
 * "relays[0].name" -> "relays", "schedule.end" -> "schedule.end" or "schedule".
 */
export function matchField(field, names) {
  let f = field || '';
  while (f) {
    if (names.includes(f)) return f;
    const cut = Math.max(f.lastIndexOf('.'), f.lastIndexOf('['));
    f = cut > 0 ? f.slice(0, cut) : '';
  }
  return null;
}

const fid = (formId, name) => `${formId}-${name.replace(/[^A-Za-z0-9_-]/g, '-')}`;

function inputValue(f, v, tz) {
  if (v === null || v === undefined) return '';
  if (f.type === 'datetime') return typeof v === 'number' ? toLocalInput(v, tz) : String(v);
  if (f.type === 'list') return Array.isArray(v) ? v.join(', ') : String(v);
  return String(v);
}

function parseValue(f, raw, tz) {
  if (f.type === 'number') return raw === '' ? null : Number(raw);
  if (f.type === 'list') return raw.split(/[;,]/).map((s) => s.trim()).filter(Boolean);
  if (f.type === 'datetime') return fromLocalInput(raw, tz); // typed in the site's time zone
  if (f.type === 'time') return raw === '' ? null : raw;
  if (f.nullIfEmpty && raw === '') return null;
  return raw;
}

function Control({ f, value, set, id, describedBy, invalid, disabled, tz, values, isNew }) {
  const common = {
    id,
    name: f.name,
    'data-test': `field-${f.name}`,
    'aria-invalid': invalid ? 'true' : undefined,
    'aria-describedby': describedBy,
    disabled: disabled || f.readOnly || (f.lockOnEdit && !isNew),
    required: f.required,
  };
  const onInput = (e) => set(parseValue(f, e.target.value, tz));
  switch (f.type) {
    case 'checkbox':
      return html`<input type="checkbox" ...${common} checked=${!!value} onChange=${(e) => set(e.target.checked)} />`;
    case 'select':
      return html`<select ...${common} value=${value === null || value === undefined ? '' : String(value)}
          onChange=${(e) => {
            const raw = e.target.value;
            const o = f.options.find(([v]) => (v === null ? '' : String(v)) === raw);
            set(o ? o[0] : raw);
          }}>
        ${f.options.map(([v, label]) => html`<option value=${v === null ? '' : String(v)}>${label}</option>`)}
      </select>`;
    case 'textarea':
      return html`<textarea ...${common} rows=${f.rows || 3} maxLength=${f.maxLength} value=${inputValue(f, value, tz)} onInput=${onInput}></textarea>`;
    case 'custom':
      return f.render({ value, set, id, common, values, disabled: common.disabled });
    default: {
      const type = { number: 'number', datetime: 'datetime-local', time: 'time', email: 'email', tel: 'tel', password: 'password' }[f.type] || 'text';
      return html`<input type=${type} ...${common} value=${inputValue(f, value, tz)} onInput=${onInput}
        min=${f.min} max=${f.max} step=${f.step} maxLength=${f.maxLength} placeholder=${f.placeholder}
        autocomplete=${f.autocomplete || 'off'} list=${f.datalist ? `${id}-list` : undefined} />
        ${f.datalist && html`<datalist id=${`${id}-list`}>${f.datalist.map((o) => html`<option value=${o} />`)}</datalist>`}`;
    }
  }
}

export function Field({ f, values, errors, setValue, formId, disabled, isNew }) {
  const { settings } = useSession();
  const tz = settings && settings.timezone;
  const id = fid(formId, f.name);
  const err = errors[f.name];
  const describedBy = [f.help && `${id}-help`, err && `${id}-err`].filter(Boolean).join(' ') || undefined;
  const value = getPath(values, f.name);
  const control = html`<${Control} f=${f} value=${value} set=${(v) => setValue(f.name, v)} id=${id}
    describedBy=${describedBy} invalid=${!!err} disabled=${disabled} tz=${tz} values=${values} isNew=${isNew} />`;
  const help = f.help && html`<p class="help" id=${`${id}-help`}>${f.help}</p>`;
  const error = err && html`<p class="field-error" id=${`${id}-err`}>${err}</p>`;
  if (f.type === 'checkbox') {
    return html`<div class="field check" data-field=${f.name}>
      ${control}<label for=${id}>${f.label}</label>${help}${error}
    </div>`;
  }
  if (f.type === 'custom' && f.fieldset) {
    return html`<fieldset class="field group" data-field=${f.name} aria-describedby=${describedBy}>
      <legend>${f.label}</legend>${control}${help}${error}
    </fieldset>`;
  }
  return html`<div class="field" data-field=${f.name}>
    <label for=${id}>${f.label}${f.required ? html`<span class="req" aria-hidden="true"> *</span>` : ''}</label>
    ${control}${help}${error}
  </div>`;
}

/** Form state: values, per-field errors, the form-level error, busy flag. */
export function useForm(initial) {
  const [values, setValues] = useState(initial);
  const [errors, setErrors] = useState({});
  const [formError, setFormError] = useState(null);
  const [busy, setBusy] = useState(false);
  const setValue = (name, v) => {
    setValues((old) => setPath(old, name, v));
    setErrors((e) => (e[name] ? { ...e, [name]: undefined } : e));
  };
  return { values, setValues, setValue, errors, setErrors, formError, setFormError, busy, setBusy };
}

/**
 * A form over FIELDS. ONSUBMIT(values) returns a promise; an ApiError is
 * shown at its field (focused) or above the buttons.
 */
export function Form({ fields, initial, onSubmit, onCancel, submitLabel = 'Save', readOnly, isNew, testId = 'form', children }) {
  const formId = `f${useId().replace(/[^A-Za-z0-9]/g, '')}`;
  const form = useForm(initial);
  const ref = useRef(null);
  const visible = fields.filter((f) => !f.showIf || f.showIf(form.values));
  async function submit(e) {
    e.preventDefault();
    if (readOnly) return;
    form.setErrors({});
    form.setFormError(null);
    const missing = visible.find((f) => f.required && [undefined, null, ''].includes(getPath(form.values, f.name)));
    if (missing) {
      form.setErrors({ [missing.name]: `${missing.label} is required.` });
      const el = ref.current && ref.current.querySelector(`#${fid(formId, missing.name)}`);
      if (el) el.focus();
      return;
    }
    form.setBusy(true);
    try {
      await onSubmit(form.values);
    } catch (err) {
      form.setBusy(false);
      const name = matchField(err.field, visible.map((f) => f.name));
      if (name) {
        form.setErrors({ [name]: err.message });
        const box = ref.current && ref.current.querySelector(`[data-field="${name}"]`);
        const el = box && box.querySelector('input, select, textarea, button');
        if (el) el.focus();
      } else {
        form.setFormError(err.field ? `${err.field}: ${err.message}` : err.message);
      }
      return;
    }
    form.setBusy(false);
  }
  return html`<form ref=${ref} class="form" onSubmit=${submit} novalidate data-test=${testId}>
    ${visible.map((f) => html`<${Field} key=${f.name} f=${f} values=${form.values} errors=${form.errors}
        setValue=${form.setValue} formId=${formId} disabled=${readOnly} isNew=${isNew} />`)}
    ${children}
    <div class="form-error" role="alert" data-test="form-error">${form.formError}</div>
    <div class="actions">
      ${!readOnly && html`<button type="submit" class="primary" data-test="form-submit" disabled=${form.busy}>
        ${form.busy ? 'Saving...' : submitLabel}</button>`}
      ${onCancel && html`<button type="button" data-test="form-cancel" onClick=${onCancel}>${readOnly ? 'Close' : 'Cancel'}</button>`}
    </div>
  </form>`;
}
