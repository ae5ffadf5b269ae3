// mlctl serve's page: pick a model, send an image (file, drop or camera) to POST /predict, show the top-k labels as
// bars with the request's latency, and the model's metadata. Served as a file under a strict CSP (no inline code).
// An API key lives in memory, or in sessionStorage when "remember for this tab" is ticked — never anywhere longer.
const KEY_SLOT = 'mlctl.apiKey';
const $ = (id) => document.getElementById(id);

let apiKey = sessionStorage.getItem(KEY_SLOT) || '';
let models = [];
let busy = 0;

class HttpError extends Error {
  constructor(status, body) {
    super(body && body.error ? body.error : `HTTP ${status}`);
    this.status = status;
    this.code = body && body.code;
  }
}

async function api(path, init = {}) {
  const headers = new Headers(init.headers || {});
  if (apiKey) headers.set('Authorization', `Bearer ${apiKey}`);
  const res = await fetch(path, { ...init, headers, cache: 'no-store' });
  const text = await res.text();
  let body;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = { error: text.slice(0, 200) };
  }
  if (!res.ok) throw new HttpError(res.status, body);
  return body;
}

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') e.className = v;
    else e[k] = v;
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function showAuth(message) {
  $('app').hidden = true;
  $('loading').hidden = true;
  $('auth').hidden = false;
  $('key-error').textContent = message || '';
  $('key').focus();
}

function selected() {
  const [name, version] = $('model').value.split('@');
  return models.find((m) => m.name === name && String(m.version) === version);
}

function renderMeta() {
  const m = selected();
  const dl = $('meta');
  dl.replaceChildren();
  if (!m) return;
  const row = (k, v) => dl.append(el('dt', {}, k), v instanceof Node ? el('dd', {}, v) : el('dd', {}, v));
  row('name', `${m.name} (version ${m.version}${m.versions.length > 1 ? ` of ${m.versions.join(', ')}` : ''})`);
  if (m.status === 'rejected') row('status', el('strong', { class: 'rejected' }, `REJECTED by a quality gate${m.statusReason ? `: ${m.statusReason}` : ''} (served with --allow-rejected)`));
  row('task', m.task);
  if (m.input.kind === 'image') row('input', `${m.input.width}×${m.input.height} RGB, ${m.input.preprocessing || 'preprocessed by the server'}`);
  else row('input', `${m.input.features} features (tabular: use /predict with JSON rows)`);
  row('output', `${m.output.kind}, ${m.output.size} values`);
  row(`labels (${m.labels.length})`, m.labels.join(', ') || '—');
  row('engine', `${m.engine} (${m.platform})`);
  if (m.createdAt) row('created', m.createdAt);
  const lineage = el('ol', { class: 'lineage' });
  for (const l of m.lineage) lineage.append(el('li', {}, `${l.op}${l.from ? ` from ${l.from.name} v${l.from.version}` : ''}${l.at ? ` — ${l.at}` : ''}`));
  row('lineage', m.lineage.length ? lineage : '—');
  if (m.metrics && Object.keys(m.metrics).length) row('metrics', Object.entries(m.metrics).filter(([, v]) => typeof v === 'number').map(([k, v]) => `${k} ${Number(v.toPrecision(4))}`).join(', '));
  $('topk').max = String(Math.max(1, m.labels.length));
  // Detection models: a score threshold instead of top-k.
  const det = m.task === 'detection';
  for (const id of ['topk', 'topk-label']) $(id).hidden = det;
  for (const id of ['minscore', 'minscore-label']) $(id).hidden = !det;
}

/** Draw a detection answer's boxes over the preview: positioned in % of the picture, so they follow its displayed size. */
function drawBoxes(dets) {
  const layer = $('boxes');
  layer.replaceChildren();
  const img = $('preview');
  const w = img.naturalWidth;
  const h = img.naturalHeight;
  if (!w || !h) return;
  dets.forEach((d, i) => {
    const box = el('div', { class: 'box', title: `${d.label} ${d.score.toFixed(3)}` }, el('span', {}, `${d.label} ${d.score.toFixed(2)}`));
    // CSSOM (not a style attribute): allowed under style-src 'self'.
    box.style.left = `${(d.box.x / w) * 100}%`;
    box.style.top = `${(d.box.y / h) * 100}%`;
    box.style.width = `${(d.box.width / w) * 100}%`;
    box.style.height = `${(d.box.height / h) * 100}%`;
    box.dataset.index = String(i);
    layer.append(box);
  });
}

function renderDetections(body, ms) {
  const out = $('result');
  const dets = (body.detections && body.detections[0]) || [];
  const img = $('preview');
  // The boxes are in the picture's pixels: wait for the preview to know its natural size.
  if (img.complete && img.naturalWidth) drawBoxes(dets);
  else img.addEventListener('load', () => drawBoxes(dets), { once: true });
  out.append(el('p', { class: 'count' }, `${dets.length} object${dets.length === 1 ? '' : 's'} found`));
  dets.forEach((d) => {
    const fill = el('span', { class: 'fill' });
    fill.style.width = `${Math.max(0, Math.min(1, d.score)) * 100}%`;
    const where = `${Math.round(d.box.x)},${Math.round(d.box.y)} ${Math.round(d.box.width)}×${Math.round(d.box.height)}`;
    out.append(el('div', { class: 'bar' }, el('span', { class: 'label', title: `${d.label} at ${where}` }, d.label), el('span', { class: 'track' }, fill), el('span', { class: 'score' }, d.score.toFixed(4))));
  });
  out.append(el('p', { class: 'latency' }, `${body.model} v${body.version} · request ${ms.toFixed(0)} ms`));
}

function renderResult(body, ms) {
  const out = $('result');
  out.replaceChildren();
  $('boxes').replaceChildren();
  if (body.detections) return renderDetections(body, ms);
  const labels = (body.labels && body.labels[0]) || [];
  if (!labels.length) {
    out.append(el('pre', {}, JSON.stringify(body.predictions && body.predictions[0])));
  }
  labels.forEach((l, i) => {
    const fill = el('span', { class: 'fill' });
    // CSSOM (not a style attribute): allowed under style-src 'self'.
    fill.style.width = `${Math.max(0, Math.min(1, l.score)) * 100}%`;
    out.append(el('div', { class: i === 0 ? 'bar top' : 'bar' }, el('span', { class: 'label', title: l.label }, l.label), el('span', { class: 'track' }, fill), el('span', { class: 'score' }, l.score.toFixed(4))));
  });
  out.append(el('p', { class: 'latency' }, `${body.model} v${body.version} · request ${ms.toFixed(0)} ms`));
}

async function predict(blob) {
  const m = selected();
  if (!m) return;
  $('error').textContent = '';
  const url = URL.createObjectURL(blob);
  const prev = $('preview');
  if (prev.src.startsWith('blob:')) URL.revokeObjectURL(prev.src);
  prev.src = url;
  prev.hidden = false;
  const k = Math.max(1, Number($('topk').value) || 5);
  const q = new URLSearchParams({ model: m.name, version: String(m.version), top_k: String(k) });
  const minScore = $('minscore').value;
  if (m.task === 'detection' && minScore !== '') q.set('min_score', minScore);
  busy++;
  document.body.dataset.busy = 'true';
  const t0 = performance.now();
  try {
    const type = blob.type && blob.type.startsWith('image/') ? blob.type : 'application/octet-stream';
    const body = await api(`/predict?${q}`, { method: 'POST', headers: { 'Content-Type': type }, body: blob });
    renderResult(body, performance.now() - t0);
  } catch (err) {
    if (err.status === 401) return showAuth(apiKey ? 'That key was not accepted.' : '');
    $('result').replaceChildren();
    $('error').textContent = `${err.message}${err.code ? ` (${err.code})` : ''}`;
  } finally {
    if (--busy === 0) delete document.body.dataset.busy;
  }
}

async function load() {
  try {
    const body = await api('/ui/models');
    models = body.models;
    $('server').textContent = `${body.server.name} ${body.server.version}`;
    const sel = $('model');
    sel.replaceChildren(...models.map((m) => el('option', { value: `${m.name}@${m.version}` }, `${m.name} v${m.version}${m.status === 'rejected' ? ' (rejected)' : ''}`)));
    $('auth').hidden = true;
    $('loading').hidden = true;
    $('app').hidden = false;
    $('forget').hidden = !apiKey;
    if (!models.length) $('error').textContent = 'No model is loaded.';
    renderMeta();
  } catch (err) {
    if (err.status === 401 || err.status === 403) return showAuth(apiKey ? `That key was not accepted: ${err.message}` : '');
    $('loading').textContent = `Could not load the models: ${err.message}`;
  }
}

function wire() {
  $('key-form').addEventListener('submit', (e) => {
    e.preventDefault();
    apiKey = $('key').value.trim();
    $('key').value = '';
    if ($('remember').checked) sessionStorage.setItem(KEY_SLOT, apiKey);
    else sessionStorage.removeItem(KEY_SLOT);
    void load();
  });
  $('forget').addEventListener('click', () => {
    apiKey = '';
    sessionStorage.removeItem(KEY_SLOT);
    showAuth('');
  });
  $('model').addEventListener('change', renderMeta);
  $('file').addEventListener('change', (e) => {
    const f = e.target.files && e.target.files[0];
    if (f) void predict(f);
    e.target.value = '';
  });
  const drop = $('drop');
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const f = e.dataTransfer && e.dataTransfer.files[0];
    if (f) void predict(f);
  });
  drop.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' || e.key === ' ') $('file').click();
  });
  wireCamera();
}

function wireCamera() {
  const video = $('video');
  let stream;
  const stop = () => {
    if (stream) for (const t of stream.getTracks()) t.stop();
    stream = undefined;
    $('cam').hidden = true;
  };
  // getUserMedia exists only in secure contexts (https, or http on localhost).
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    $('camera').hidden = true;
    return;
  }
  $('camera').addEventListener('click', async () => {
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' }, audio: false });
      video.srcObject = stream;
      $('cam').hidden = false;
      await video.play();
    } catch (err) {
      $('error').textContent = `camera: ${err.message || err.name}`;
      stop();
    }
  });
  $('snap').addEventListener('click', () => {
    if (!stream || !video.videoWidth) return;
    const c = document.createElement('canvas');
    c.width = video.videoWidth;
    c.height = video.videoHeight;
    c.getContext('2d').drawImage(video, 0, 0);
    c.toBlob((b) => b && predict(b), 'image/jpeg', 0.92);
  });
  $('cam-close').addEventListener('click', stop);
  window.addEventListener('pagehide', stop);
}

wire();
void load();
