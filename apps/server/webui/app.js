// genvis web UI. Talks to `genvis serve` (docs/server.md): the A1111 listing routes fill the
// pickers, the job API (/genvis/v1/jobs + its Server-Sent Events) runs generations.
'use strict';

// ---------- DOM helpers & state ----------

const $ = (id) => document.getElementById(id);

function el(tag, props = {}, ...children) {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...children);
  return e;
}

const state = {
  info: null,        // the resident model's description from /genvis/v1/info
  supports: {},      // its `supports` flags
  model: '',         // the checkpoint title selected in #model
  job: null,         // id of the running job, null when idle
  initImage: null,   // { b64, width, height } of the chosen init image (re-encoded as PNG)
  maskDirty: false,  // whether anything was painted on the mask
};

function setState(s) { document.body.dataset.state = s; }

// ---------- Status line & field highlighting ----------

function setStatus(message, kind = 'info') {
  const s = $('status');
  s.textContent = message;
  s.dataset.kind = kind;
}

// Request field names (genvis, A1111, engine) → input ids.
const FIELD_IDS = {
  prompt: 'prompt', negative_prompt: 'negative_prompt', seed: 'seed', steps: 'steps',
  cfg_scale: 'cfg_scale', guidance: 'cfg_scale', sampler_name: 'sampler', sampler: 'sampler',
  scheduler: 'scheduler', schedule: 'scheduler', width: 'width', height: 'height', size: 'width',
  batch_size: 'batch_size', batch: 'batch_size', n_iter: 'batch_size', n: 'batch_size',
  frames: 'frames', num_frames: 'frames', init_images: 'init_image', init_image: 'init_image',
  image: 'init_image', denoising_strength: 'denoising_strength', strength: 'denoising_strength',
  mask: 'mask_canvas', sd_model_checkpoint: 'model', model: 'model', adapters: 'lora',
  embeddings_dir: 'embedding', apikey: 'apikey',
};

function highlightField(field) {
  // Fields may be compound ("width/height") or indexed ("init_images[0]").
  for (const part of String(field).split('/')) {
    const id = FIELD_IDS[part.replace(/\[\d+\]$/, '').trim()];
    const input = id && $(id);
    if (!input) continue;
    input.classList.add('invalid');
    if (input.focus && !input.disabled) input.focus({ preventScroll: false });
  }
}

function clearHighlights() {
  document.querySelectorAll('.invalid').forEach((e) => e.classList.remove('invalid'));
}

function showError(err) {
  setStatus(err.message || String(err), 'error');
  if (err.field) highlightField(err.field);
}

// ---------- API ----------

const KEY_STORAGE = 'genvis.apikey';

class ApiError extends Error {
  constructor(message, status = 0, field = null) {
    super(message);
    this.status = status;
    this.field = field;
  }
}

function apiHeaders(extra = {}) {
  const headers = { ...extra };
  const key = $('apikey').value.trim();
  if (key) headers.Authorization = `Bearer ${key}`;
  return headers;
}

// Turns a non-2xx response into an ApiError, reading any of the server's error shapes:
// genvis {"error": {"message", "field"}}, OpenAI {"error": {"message", "param"}},
// A1111 {"error": "...", "detail": "...", "field"}.
async function errorFrom(res) {
  if (res.status === 401) return new ApiError('API key required', 401, 'apikey');
  const text = await res.text().catch(() => '');
  let body = null;
  try { body = JSON.parse(text); } catch { /* not JSON */ }
  let message = '';
  let field = null;
  const e = body && body.error;
  if (e && typeof e === 'object') {
    message = e.message;
    field = e.field ?? e.param ?? null;
  } else if (body && typeof body === 'object') {
    message = body.detail || (typeof e === 'string' ? e : '');
    field = body.field ?? null;
  }
  if (!message) message = text.trim() || `${res.status} ${res.statusText}`;
  if (res.status === 429) {
    const after = res.headers.get('Retry-After');
    message = `Queue full: ${message}${after ? ` (retry after ${after} s)` : ''}`;
  }
  return new ApiError(message, res.status, field);
}

async function api(method, path, body) {
  const opts = { method, headers: apiHeaders(body === undefined ? {} : { 'Content-Type': 'application/json' }) };
  if (body !== undefined) opts.body = JSON.stringify(body);
  let res;
  try {
    res = await fetch(path, opts);
  } catch (err) {
    throw new ApiError(`Cannot reach the server: ${err.message}`);
  }
  if (!res.ok) throw await errorFrom(res);
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

// ---------- Model info & pickers ----------

// Assumption: /genvis/v1/info holds the model's fields (name, supports, defaults, native_*)
// either at its top level or under "model"; limits at "limits" (max_width, ...).
async function loadInfo() {
  const info = await api('GET', '/genvis/v1/info');
  const m = info.model && typeof info.model === 'object' ? info.model : info;
  state.info = m;
  state.supports = m.supports || {};
  const limits = info.limits || {};
  const d = m.defaults || {};
  $('model_name').textContent = [m.name, m.family && `(${m.family})`].filter(Boolean).join(' ');

  // Empty fields fall back to the model's defaults: show those as placeholders.
  const hint = (id, value) => { $(id).placeholder = value ? String(value) : ''; };
  hint('steps', d.steps);
  hint('cfg_scale', d.guidance);
  hint('width', m.native_width);
  hint('height', m.native_height);
  hint('frames', m.native_frames);
  hint('denoising_strength', d.strength);
  for (const id of ['width', 'height']) if (m.size_multiple) $(id).step = m.size_multiple;
  const maxBatch = Math.min(limits.max_batch || Infinity, m.max_batch || Infinity);
  const setMax = (id, v) => { if (Number.isFinite(v)) $(id).max = v; else $(id).removeAttribute('max'); };
  setMax('batch_size', maxBatch);
  setMax('width', limits.max_width);
  setMax('height', limits.max_height);
  setMax('steps', limits.max_steps);
  setMax('frames', limits.max_frames);
  for (const [id, key] of [['sampler', 'sampler'], ['scheduler', 'schedule']]) {
    if (!$(id).dataset.empty) $(id).options[0].textContent = defaultLabel(key);
  }
}

// The label of a picker's "use the model's default" entry.
function defaultLabel(key) {
  const d = state.info?.defaults?.[key];
  return d ? `Default (${d})` : 'Default';
}

// Replaces a select's options; an empty list shows one disabled "none" entry.
function fillSelect(select, items, placeholder) {
  select.replaceChildren();
  if (!items.length) {
    select.append(new Option('none', ''));
    select.dataset.empty = '1';
    return;
  }
  delete select.dataset.empty;
  if (placeholder !== undefined) select.append(new Option(placeholder, ''));
  for (const { label, value } of items) select.append(new Option(label, value));
}

async function loadModels() {
  const sel = $('model');
  const showResident = (name) => {
    sel.replaceChildren(new Option(state.info?.name || name || 'current model', ''));
    sel.disabled = true;
  };
  let models, options;
  try {
    [models, options] = await Promise.all([
      api('GET', '/sdapi/v1/sd-models'),
      api('GET', '/sdapi/v1/options').catch(() => ({})),
    ]);
  } catch (err) {
    showResident();
    throw err;
  }
  // No --models-dir: only the resident model, which cannot be switched.
  if (!Array.isArray(models) || !models.length) return showResident(options.sd_model_checkpoint);
  sel.replaceChildren(...models.map((m) => new Option(m.title, m.title)));
  const current = options.sd_model_checkpoint;
  const match = models.find((m) => m.title === current || m.model_name === current);
  if (match) sel.value = match.title;
  else if (current) sel.prepend(new Option(current, current, true, true));
  state.model = sel.value;
  sel.disabled = false;
}

async function loadSamplers() {
  const list = await api('GET', '/sdapi/v1/samplers');
  fillSelect($('sampler'), (list || []).map((s) => ({ label: s.name, value: s.name })), defaultLabel('sampler'));
}

async function loadSchedulers() {
  const list = await api('GET', '/sdapi/v1/schedulers');
  fillSelect($('scheduler'), (list || []).map((s) => ({ label: s.label, value: s.label })), defaultLabel('schedule'));
}

async function loadLoras() {
  const list = await api('GET', '/sdapi/v1/loras');
  fillSelect($('lora'), (list || []).map((l) => ({ label: l.alias || l.name, value: l.name })), 'Add LoRA…');
}

async function loadEmbeddings() {
  const res = await api('GET', '/sdapi/v1/embeddings');
  const names = Object.keys(res?.loaded || {});
  fillSelect($('embedding'), names.map((n) => ({ label: n, value: n })), 'Add embedding…');
}

// Disables what the resident model cannot do. Before /genvis/v1/info answered, everything is
// left enabled and the server decides.
function applySupports() {
  const can = (k) => !state.info || state.supports[k] === true;
  const setEnabled = (id, on) => {
    const e = $(id);
    e.disabled = !on;
    e.closest('.field')?.classList.toggle('unsupported', !on && !e.dataset.empty);
  };
  setEnabled('negative_prompt', can('negative_prompt'));
  setEnabled('cfg_scale', can('guidance'));
  setEnabled('steps', can('steps'));
  setEnabled('sampler', can('sampler') && !$('sampler').dataset.empty);
  setEnabled('scheduler', can('schedule') && !$('scheduler').dataset.empty);
  setEnabled('lora', can('adapters') && !$('lora').dataset.empty);
  setEnabled('embedding', can('embeddings') && !$('embedding').dataset.empty);
  const fromImage = can('image_to_image') || can('inpainting');
  setEnabled('init_image', fromImage);
  setEnabled('denoising_strength', fromImage);
  $('init_remove').disabled = !fromImage;
  const paint = can('inpainting');
  $('mask_clear').disabled = !paint;
  $('brush_size').disabled = !paint;
  $('mask_canvas').classList.toggle('disabled', !paint);
  setEnabled('frames', state.supports.video === true);
  $('frames_field').hidden = state.supports.video !== true;
}

async function loadAll() {
  let infoError = null;
  try { await loadInfo(); } catch (err) { state.info = null; state.supports = {}; infoError = err; }
  const results = await Promise.allSettled([loadModels(), loadSamplers(), loadSchedulers(), loadLoras(), loadEmbeddings()]);
  applySupports();
  const failed = infoError || results.find((r) => r.status === 'rejected')?.reason;
  if (failed) showError(failed);
  else setStatus('Ready', 'ok');
}

async function switchModel() {
  const sel = $('model');
  const title = sel.value;
  if (!title || title === state.model) return;
  sel.disabled = true;
  $('generate').disabled = true;
  setStatus(`Loading ${title}…`);
  try {
    await api('POST', '/sdapi/v1/options', { sd_model_checkpoint: title });
    state.model = title;
    await loadInfo();
    // Samplers and schedules belong to the model (a flow model has its own).
    await Promise.all([loadSamplers(), loadSchedulers()]);
    applySupports();
    setStatus(`Loaded ${title}`, 'ok');
  } catch (err) {
    sel.value = state.model;
    showError(err);
  } finally {
    sel.disabled = false;
    $('generate').disabled = state.job !== null;
  }
}

// Appends text to the prompt, separated by a space.
function appendToPrompt(text) {
  const p = $('prompt');
  p.value = p.value.trim() ? `${p.value.replace(/\s+$/, '')} ${text}` : text;
}

// ---------- Init image & mask painter ----------

const mask = { drawing: false, last: null };
const stripDataUrl = (url) => url.slice(url.indexOf(',') + 1);

function loadInitImage(file) {
  if (!file) return clearInitImage();
  const url = URL.createObjectURL(file);
  const img = new Image();
  img.onload = () => {
    // Re-encode as PNG (the API takes PNG; the file may be a JPEG or WebP).
    const c = el('canvas', { width: img.naturalWidth, height: img.naturalHeight });
    c.getContext('2d').drawImage(img, 0, 0);
    const png = c.toDataURL('image/png');
    URL.revokeObjectURL(url);
    state.initImage = { b64: stripDataUrl(png), width: c.width, height: c.height };
    $('init_preview').src = png;
    const canvas = $('mask_canvas');
    canvas.width = c.width;
    canvas.height = c.height;
    clearMask();
    $('mask_wrap').hidden = false;
  };
  img.onerror = () => {
    URL.revokeObjectURL(url);
    clearInitImage();
    setStatus(`Cannot read ${file.name} as an image`, 'error');
  };
  img.src = url;
}

function clearInitImage() {
  state.initImage = null;
  $('init_image').value = '';
  $('init_preview').removeAttribute('src');
  $('mask_wrap').hidden = true;
  clearMask();
}

function clearMask() {
  const canvas = $('mask_canvas');
  canvas.getContext('2d').clearRect(0, 0, canvas.width, canvas.height);
  state.maskDirty = false;
}

// Pointer position in canvas (= init image) pixels, and the display→image scale.
function canvasPoint(ev) {
  const canvas = $('mask_canvas');
  const r = canvas.getBoundingClientRect();
  const scale = canvas.width / r.width;
  return { x: (ev.clientX - r.left) * scale, y: (ev.clientY - r.top) * (canvas.height / r.height), scale };
}

// Paints white from the last point to p; the brush size is in screen pixels.
function paintTo(p) {
  const ctx = $('mask_canvas').getContext('2d');
  const width = Number($('brush_size').value) * p.scale;
  ctx.fillStyle = ctx.strokeStyle = '#fff';
  ctx.lineWidth = width;
  ctx.lineCap = ctx.lineJoin = 'round';
  if (mask.last) {
    ctx.beginPath();
    ctx.moveTo(mask.last.x, mask.last.y);
    ctx.lineTo(p.x, p.y);
    ctx.stroke();
  }
  ctx.beginPath();
  ctx.arc(p.x, p.y, width / 2, 0, Math.PI * 2);
  ctx.fill();
  mask.last = p;
  state.maskDirty = true;
}

function setupMaskPainter() {
  const canvas = $('mask_canvas');
  canvas.addEventListener('pointerdown', (ev) => {
    if (canvas.classList.contains('disabled') || ev.button !== 0) return;
    canvas.setPointerCapture(ev.pointerId);
    mask.drawing = true;
    mask.last = null;
    canvas.classList.remove('invalid');
    paintTo(canvasPoint(ev));
  });
  canvas.addEventListener('pointermove', (ev) => { if (mask.drawing) paintTo(canvasPoint(ev)); });
  const stop = () => { mask.drawing = false; mask.last = null; };
  canvas.addEventListener('pointerup', stop);
  canvas.addEventListener('pointercancel', stop);
}

// The mask as the API wants it: a PNG of the init image's size, black with white strokes.
function maskPngB64() {
  const src = $('mask_canvas');
  const c = el('canvas', { width: src.width, height: src.height });
  const ctx = c.getContext('2d');
  ctx.fillStyle = '#000';
  ctx.fillRect(0, 0, c.width, c.height);
  ctx.drawImage(src, 0, 0);
  return stripDataUrl(c.toDataURL('image/png'));
}

// ---------- Request ----------

// A field's value, or undefined when it is empty, disabled or hidden (the model's default applies).
function fieldValue(id, numeric) {
  const e = $(id);
  if (e.disabled || e.closest('[hidden]')) return undefined;
  const v = e.value.trim();
  if (v === '') return undefined;
  return numeric ? Number(v) : v;
}

function buildRequest() {
  const req = {};
  const put = (key, id, numeric = false) => {
    const v = fieldValue(id, numeric);
    if (v !== undefined) req[key] = v;
  };
  put('prompt', 'prompt');
  put('negative_prompt', 'negative_prompt');
  put('seed', 'seed', true);
  put('steps', 'steps', true);
  put('cfg_scale', 'cfg_scale', true);
  put('sampler_name', 'sampler');
  put('scheduler', 'scheduler');
  put('width', 'width', true);
  put('height', 'height', true);
  put('batch_size', 'batch_size', true);
  if (state.supports.video) put('frames', 'frames', true);
  if (state.initImage && !$('init_image').disabled) {
    req.init_images = [state.initImage.b64];
    put('denoising_strength', 'denoising_strength', true);
    if (state.maskDirty && !$('mask_clear').disabled) req.mask = maskPngB64();
  }
  return req;
}

// ---------- Jobs: submit, follow events, cancel ----------

function setRunning(running) {
  $('generate').disabled = running;
  $('cancel').disabled = !running;
  if (running) setState('running');
}

function finish(outcome) {
  state.job = null;
  setRunning(false);
  setState(outcome);
}

async function generate() {
  if (state.job !== null) return;
  clearHighlights();
  const req = buildRequest();
  state.job = '';  // submitting: blocks a second Generate; Cancel needs the id first
  $('generate').disabled = true;
  setState('running');
  setStatus('Submitting…');
  showProgress({ state: 'queued' });
  $('preview').removeAttribute('src');
  try {
    const { id, status } = await api('POST', '/genvis/v1/jobs', req);
    state.job = id;
    setRunning(true);
    if (status) showProgress(status);
    await followEvents(id);
  } catch (err) {
    showError(err);
    finish('error');
  }
}

// Reads the event stream with fetch (so that the Authorization header is sent).
async function followEvents(id) {
  const res = await fetch(`/genvis/v1/jobs/${encodeURIComponent(id)}/events`, {
    headers: apiHeaders({ Accept: 'text/event-stream' }),
  });
  if (!res.ok) throw await errorFrom(res);
  for await (const frame of sseFrames(res.body)) {
    if (await handleEvent(frame)) return;
  }
  await recoverJob(id);  // the stream ended without a final event
}

// Yields {event, data} per SSE frame: `event:` / `data:` lines, a blank line ends a frame.
async function* sseFrames(body) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let event = 'message';
  let data = [];
  try {
    for (;;) {
      const { value, done } = await reader.read();
      buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
      const lines = buffer.split(/\r?\n/);
      buffer = done ? '' : lines.pop();
      for (const line of lines) {
        if (line === '') {
          if (data.length) yield { event, data: data.join('\n') };
          event = 'message';
          data = [];
        } else if (!line.startsWith(':')) {  // ":" starts a comment (keep-alive)
          const colon = line.indexOf(':');
          const name = colon < 0 ? line : line.slice(0, colon);
          const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
          if (name === 'event') event = value;
          else if (name === 'data') data.push(value);
        }
      }
      if (done) {
        if (data.length) yield { event, data: data.join('\n') };
        return;
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

// Handles one frame; true when the job is over.
async function handleEvent({ event, data }) {
  let payload = {};
  try { payload = JSON.parse(data); } catch { /* keep {} */ }
  switch (event) {
    case 'progress':
      showProgress(payload);
      return false;
    case 'done':
      await showResult(payload.result || payload);
      return true;
    case 'error':
      jobFailed(payload);
      return true;
    case 'cancelled':
      jobCancelled();
      return true;
    default:
      return false;
  }
}

async function recoverJob(id) {
  const s = await api('GET', `/genvis/v1/jobs/${encodeURIComponent(id)}`);
  if (s.state === 'done') await showResult(await api('GET', `/genvis/v1/jobs/${encodeURIComponent(id)}/result`));
  else if (s.state === 'cancelled') jobCancelled();
  else if (s.state === 'failed') jobFailed(s);
  else throw new ApiError('Lost the connection to the job\'s event stream');
}

function jobFailed(status) {
  const e = status.error;
  const message = (e && typeof e === 'object' ? e.message : e) || 'Generation failed';
  showError(new ApiError(message, 0, e && typeof e === 'object' ? e.field : status.field));
  finish('error');
}

function jobCancelled() {
  setStatus('Cancelled');
  finish('cancelled');
}

async function cancelJob() {
  const id = state.job;
  if (!id) return;
  $('cancel').disabled = true;
  setStatus('Cancelling…');
  try {
    await api('DELETE', `/genvis/v1/jobs/${encodeURIComponent(id)}`);
  } catch (err) {
    showError(err);
    $('cancel').disabled = state.job !== id;
  }
  // The event stream reports `cancelled` and ends the job.
}

// ---------- Progress & results ----------

const pngUrl = (b64) => (b64.startsWith('data:') ? b64 : `data:image/png;base64,${b64}`);

function showProgress(s) {
  const bar = $('progress');
  let text;
  if (s.state === 'queued') {
    bar.removeAttribute('value');  // indeterminate
    text = s.queue_position ? `Queued, position ${s.queue_position}` : 'Queued';
  } else {
    bar.max = s.total || 1;
    bar.value = Math.min(s.step || 0, bar.max);
    text = `Step ${s.step || 0}/${s.total || '?'}`;
    if (typeof s.eta === 'number') text += ` · ETA ${s.eta.toFixed(1)} s`;
    if (typeof s.elapsed === 'number') text += ` · ${s.elapsed.toFixed(1)} s elapsed`;
    if (s.state === 'running') setStatus('Generating…');
  }
  $('progress_text').textContent = text;
  if (s.preview) $('preview').src = pngUrl(s.preview);
}

// With an API key the video URL needs the Authorization header, which <video> cannot send:
// fetch it and play a blob URL instead.
async function videoSource(url) {
  if (!$('apikey').value.trim()) return url;
  try {
    const res = await fetch(url, { headers: apiHeaders() });
    if (!res.ok) throw await errorFrom(res);
    return URL.createObjectURL(await res.blob());
  } catch {
    return url;
  }
}

function resultCard(media, infotext, href, filename) {
  const link = el('a', { href, download: filename, textContent: 'Download' });
  return el('figure', { className: 'result' }, media, link, el('pre', { className: 'infotext', textContent: infotext || '' }));
}

// Adds a job's results at the top of the gallery (newest first; a job's own results in order).
async function showResult(result) {
  const infotexts = result.infotexts || [];
  const seeds = result.seeds || [];
  const cards = [];
  if (result.video && result.video.url) {
    const src = await videoSource(result.video.url);
    const video = el('video', { controls: true, loop: true, autoplay: true, muted: true, playsInline: true, src });
    video.setAttribute('muted', '');
    video.dataset.url = result.video.url;
    const ext = (result.video.mime || '').split('/')[1] || 'mp4';
    cards.push(resultCard(video, infotexts[0], src, `genvis-${seeds[0] ?? 'video'}.${ext}`));
  } else {
    (result.images || []).forEach((b64, i) => {
      const src = pngUrl(b64);
      const img = el('img', { src, alt: `Result ${i + 1}`, loading: 'lazy' });
      img.addEventListener('load', () => img.classList.toggle('small', img.naturalWidth < 128), { once: true });
      cards.push(resultCard(img, infotexts[i], src, `genvis-${seeds[i] ?? i}.png`));
    });
  }
  $('gallery').prepend(...cards);
  const bar = $('progress');
  bar.max = 1;
  bar.value = 1;
  const n = cards.length;
  setStatus(`Done: ${result.video ? 'video' : `${n} image${n === 1 ? '' : 's'}`}`, 'ok');
  finish('done');
}

// ---------- Wiring ----------

function init() {
  setState('idle');
  const key = $('apikey');
  key.value = localStorage.getItem(KEY_STORAGE) || '';
  key.addEventListener('input', () => localStorage.setItem(KEY_STORAGE, key.value.trim()));
  key.addEventListener('change', () => { clearHighlights(); loadAll(); });

  $('controls').addEventListener('submit', (ev) => { ev.preventDefault(); generate(); });
  $('controls').addEventListener('input', (ev) => ev.target.classList.remove('invalid'));
  for (const id of ['prompt', 'negative_prompt']) {
    $(id).addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); generate(); }
    });
  }
  $('cancel').addEventListener('click', cancelJob);
  $('model').addEventListener('change', switchModel);

  $('lora').addEventListener('change', (ev) => {
    if (ev.target.value) appendToPrompt(`<lora:${ev.target.value}:1>`);
    ev.target.value = '';
  });
  $('embedding').addEventListener('change', (ev) => {
    if (ev.target.value) appendToPrompt(ev.target.value);
    ev.target.value = '';
  });

  $('init_image').addEventListener('change', (ev) => loadInitImage(ev.target.files[0]));
  $('init_remove').addEventListener('click', clearInitImage);
  $('mask_clear').addEventListener('click', clearMask);
  $('brush_size').addEventListener('input', (ev) => { $('brush_size_value').textContent = ev.target.value; });
  setupMaskPainter();

  loadAll();
}

init();
