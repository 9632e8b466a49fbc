// The Iris playground: one page, no dependencies, served by Iris at /. It talks to
// /graphql like any client: a `models` query when it loads, then one subscription per run
// (captionStream / answerStream / generateStream) over SSE, read with fetch. Attention maps
// (Token.attention: a rows × cols grid over the preprocessed square image) are drawn here on
// a canvas over the image; a server or model without them still captions, asks and generates.

const GRAPHQL = new URL('/graphql', location.href).href;
const $ = (id) => document.getElementById(id);
const el = {
  drop: $('drop'), stage: $('stage'), preview: $('preview'), heatmap: $('heatmap'), hint: $('drop-hint'),
  file: $('file'), urlForm: $('url-form'), url: $('url'), opacity: $('opacity'), note: $('attention-note'),
  form: $('run-form'), promptRow: $('prompt-row'), promptLabel: $('prompt-label'), prompt: $('prompt'),
  model: $('model'), attention: $('attention'), run: $('run'), stop: $('stop'), status: $('status'),
  error: $('error'), tokens: $('tokens'), info: $('token-info'), stats: $('stats'), allMap: $('all-map'), warnings: $('warnings'),
};
const ALL = -2; // hovered / selected value for the map of the whole answer

const TASKS = {
  caption: { field: 'captionStream', arg: null },
  answer: { field: 'answerStream', arg: 'question', label: 'Question', placeholder: 'what color is the circle?' },
  generate: { field: 'generateStream', arg: 'prompt', label: 'Prompt', placeholder: 'a small red' },
};

const state = {
  image: null, // { base64: dataUrl } | { url }
  models: [], // [{ id, ready, default, dtype, attention? }]
  tokens: [], // [{ delta, token }]
  selected: -1, // token pinned by click / tap / Enter (ALL: the whole answer's map)
  hovered: -1, // token under the pointer or keyboard focus (ALL: the whole-answer button)
  abort: null,
};

// ---------------------------------------------------------------- GraphQL over HTTP and SSE

/** Readable text of GraphQL errors: "message (CODE)" per error. */
function describeErrors(errors) {
  return errors.map((e) => (e.extensions?.code ? `${e.message} (${e.extensions.code})` : e.message)).join('\n');
}

class ApiError extends Error {}

async function query(text, variables) {
  const res = await fetch(GRAPHQL, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json' }, body: JSON.stringify({ query: text, variables }) });
  const body = await res.json().catch(() => null);
  if (!body) throw new ApiError(`HTTP ${res.status} ${res.statusText}`);
  if (body.errors?.length) throw new ApiError(describeErrors(body.errors));
  return body.data;
}

/** POSTs a subscription with Accept: text/event-stream and yields each `next` payload. */
async function* subscribe(text, variables, signal) {
  const res = await fetch(GRAPHQL, { method: 'POST', signal, headers: { 'content-type': 'application/json', accept: 'text/event-stream' }, body: JSON.stringify({ query: text, variables }) });
  if (!(res.headers.get('content-type') ?? '').includes('text/event-stream')) {
    const body = await res.json().catch(() => null);
    throw new ApiError(body?.errors?.length ? describeErrors(body.errors) : `HTTP ${res.status} ${res.statusText}`);
  }
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, '\n');
    let cut;
    while ((cut = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let event = 'message';
      const data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
      if (event === 'complete') return;
      if (event === 'next' && data.length) yield JSON.parse(data.join('\n'));
    }
  }
}

// ---------------------------------------------------------------- models and attention support

const MODEL_FIELDS = 'id ready default dtype state';

async function loadModels() {
  let models;
  try {
    // Servers from before attention maps have no `attention` field: ask again without it.
    models = (await query(`{ models { ${MODEL_FIELDS} attention } }`)).models;
  } catch (e) {
    if (!(e instanceof ApiError) || !/attention/.test(e.message)) throw e;
    models = (await query(`{ models { ${MODEL_FIELDS} } }`)).models;
  }
  state.models = models;
  const chosen = el.model.value;
  el.model.replaceChildren(...models.map((m) => {
    const option = new Option(`${m.id}${m.dtype && m.dtype !== 'fp32' ? ` (${m.dtype})` : ''}${m.ready ? '' : ` — ${m.state === 'READY' ? 'unavailable' : m.state.toLowerCase()}`}`, m.id, m.default, m.default);
    return option;
  }));
  if (chosen && models.some((m) => m.id === chosen)) el.model.value = chosen;
  updateAttentionAvailability();
  // A server that has just started is still loading its models: look again until they are in.
  if (models.some((m) => m.state === 'LOADING')) setTimeout(() => loadModels().catch(() => undefined), 1000);
}

function currentModel() {
  return state.models.find((m) => m.id === el.model.value);
}

function attentionOffered() {
  return currentModel()?.attention === true;
}

/** Attention maps come from plain decoder steps: the API refuses them with a speculative mode. */
function speculating() {
  return $('speculative').value === 'DRAFT' || $('speculative').value === 'NGRAM';
}

function updateAttentionAvailability() {
  const offered = attentionOffered();
  el.attention.disabled = !offered || speculating();
  const model = currentModel();
  el.note.textContent = !model ? ''
    : offered && speculating() ? 'No attention maps with speculative decoding: set Speculative to off or the server default to see them.'
    : offered ? 'Hover, tap or focus a word to see where the model looked.'
    : model.attention === false ? `Model ${model.id} has no attention maps (its folder has no attentions variant).`
    : 'This server does not offer attention maps: words show probabilities only.';
}

// ---------------------------------------------------------------- image intake

function setImage(image, src) {
  state.image = image;
  el.preview.src = src;
  el.stage.hidden = false;
  el.run.disabled = false;
  clearOutput();
}

function readFile(file) {
  if (!file) return;
  state.image = null; // no run on the previous image while this one loads
  el.run.disabled = true;
  const reader = new FileReader();
  reader.onload = () => setImage({ base64: reader.result }, reader.result);
  reader.onerror = () => showError(`Could not read ${file.name}: ${reader.error?.message ?? 'unknown error'}`);
  reader.readAsDataURL(file);
}

el.file.addEventListener('change', () => readFile(el.file.files?.[0]));
el.urlForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const url = el.url.value.trim();
  if (url) setImage({ url }, url);
});
el.drop.addEventListener('dragover', (e) => { e.preventDefault(); el.drop.classList.add('over'); });
el.drop.addEventListener('dragleave', () => el.drop.classList.remove('over'));
el.drop.addEventListener('drop', (e) => {
  e.preventDefault();
  el.drop.classList.remove('over');
  const file = e.dataTransfer?.files?.[0];
  if (file) return readFile(file);
  const url = e.dataTransfer?.getData('text/uri-list') || e.dataTransfer?.getData('text/plain');
  if (url && /^https?:/i.test(url.trim())) { el.url.value = url.trim(); setImage({ url: url.trim() }, url.trim()); }
});
el.drop.addEventListener('keydown', (e) => {
  if (e.target === el.drop && (e.key === 'Enter' || e.key === ' ')) { e.preventDefault(); el.file.click(); }
});
document.addEventListener('paste', (e) => {
  const file = [...(e.clipboardData?.files ?? [])].find((f) => f.type.startsWith('image/'));
  if (file) { e.preventDefault(); readFile(file); return; }
  const text = e.clipboardData?.getData('text/plain')?.trim();
  const typing = e.target instanceof HTMLInputElement || e.target instanceof HTMLTextAreaElement;
  if (!typing && text && /^https?:\/\/\S+$/i.test(text)) { el.url.value = text; setImage({ url: text }, text); }
});
/** Fits the image into the panel (and 60 % of the window's height) at its own aspect ratio, scaling small images up. */
function fitPreview() {
  const { naturalWidth: nw, naturalHeight: nh } = el.preview;
  if (!nw || !nh) return;
  const style = getComputedStyle(el.drop);
  const room = el.drop.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  const scale = Math.min(room / nw, Math.max(160, window.innerHeight * 0.6) / nh);
  el.preview.style.width = `${Math.max(1, Math.floor(nw * scale))}px`;
  el.preview.style.height = `${Math.max(1, Math.floor(nh * scale))}px`;
  el.preview.classList.toggle('pixelated', scale > 1.5);
}
el.preview.addEventListener('load', () => { fitPreview(); drawActiveMap(); });
el.preview.addEventListener('error', () => { el.stage.hidden = true; });
el.opacity.addEventListener('input', () => { el.heatmap.style.opacity = el.opacity.value; });
new ResizeObserver(() => { fitPreview(); drawActiveMap(); }).observe(el.drop);

// ---------------------------------------------------------------- the form

function task() {
  return el.form.elements.task.value;
}

function updateTask() {
  const t = TASKS[task()];
  el.promptRow.hidden = !t.arg;
  if (t.arg) {
    el.promptLabel.textContent = t.label;
    el.prompt.placeholder = t.placeholder;
  }
  el.prompt.required = Boolean(t.arg);
}
el.form.addEventListener('change', (e) => {
  if (e.target.name === 'task') updateTask();
  if (e.target === el.model || e.target.id === 'speculative') updateAttentionAvailability();
});

function options() {
  const o = { logprobs: true, topLogprobs: 5 };
  for (const [id, parse] of [['maxNewTokens', parseInt], ['temperature', parseFloat], ['topK', parseInt], ['topP', parseFloat], ['seed', parseInt]]) {
    const raw = $(id).value.trim();
    if (raw !== '') o[id] = parse(raw, 10);
  }
  if ($('speculative').value) o.speculative = $('speculative').value;
  if (attentionOffered() && el.attention.checked && !speculating()) o.attention = true;
  return o;
}

function subscriptionFor(t, withAttention) {
  const { field, arg } = TASKS[t];
  const attention = withAttention ? ' attention { rows cols weights aggregation imageShare }' : '';
  return `subscription Playground($image: ImageInput!, $options: GenerationOptions, $model: String${arg ? `, $text: String!` : ''}) {
  event: ${field}(image: $image, options: $options, model: $model${arg ? `, ${arg}: $text` : ''}) {
    delta
    done
    token { id text logprob top { id text logprob }${attention} }
    generation { text finishReason model usage { promptTokens imageTokens completionTokens } warnings { code message } confidence { tokens meanLogprob minLogprob perplexity } timings { queueMs imageEncodeMs imageCached prefillMs decodeMs totalMs draftedTokens acceptedTokens acceptanceRate } }
  }
}`;
}

el.form.addEventListener('submit', async (e) => {
  e.preventDefault();
  if (!state.image || state.abort) return;
  const t = task();
  const opts = options();
  const variables = { image: state.image, options: opts, model: el.model.value || null };
  if (TASKS[t].arg) variables.text = el.prompt.value;
  clearOutput();
  const abort = new AbortController();
  state.abort = abort;
  el.run.disabled = true;
  el.stop.disabled = false;
  el.status.textContent = 'Generating…';
  let finished = false;
  try {
    for await (const payload of subscribe(subscriptionFor(t, Boolean(opts.attention)), variables, abort.signal)) {
      if (payload.errors?.length) throw new ApiError(describeErrors(payload.errors));
      const event = payload.data?.event;
      if (!event) continue;
      if (event.token || event.delta) addToken(event.delta, event.token);
      if (event.done) { finished = true; showGeneration(event.generation); }
    }
    el.status.textContent = finished ? 'Done.' : '';
    if (!finished) showError('The stream ended before the generation finished.');
  } catch (err) {
    if (abort.signal.aborted) el.status.textContent = 'Stopped.';
    else { el.status.textContent = ''; showError(err instanceof ApiError ? err.message : `Could not reach Iris: ${err.message}`); }
  } finally {
    state.abort = null;
    el.run.disabled = !state.image;
    el.stop.disabled = true;
  }
});
el.stop.addEventListener('click', () => state.abort?.abort());

// ---------------------------------------------------------------- output: tokens, details, stats

function clearOutput() {
  state.tokens = [];
  state.selected = -1;
  state.hovered = -1;
  el.tokens.replaceChildren();
  el.info.hidden = true;
  el.info.replaceChildren();
  el.stats.replaceChildren();
  el.allMap.hidden = true;
  el.allMap.setAttribute('aria-pressed', 'false');
  el.warnings.hidden = true;
  el.warnings.textContent = '';
  el.error.hidden = true;
  el.error.textContent = '';
  drawActiveMap();
}

function showError(message) {
  el.error.textContent = message;
  el.error.hidden = false;
}

function pct(logprob) {
  const p = Math.exp(logprob) * 100;
  return p >= 99.95 ? '100 %' : p < 0.1 ? '< 0.1 %' : `${p.toFixed(1)} %`;
}
const logp = (v) => (Math.abs(v) < 1e-3 && v !== 0 ? v.toExponential(1) : v.toFixed(3));

function addToken(delta, token) {
  const i = state.tokens.length;
  state.tokens.push({ delta, token });
  const b = document.createElement('button');
  b.type = 'button';
  b.className = 'tok';
  b.dataset.i = String(i);
  b.textContent = delta || token?.text || '';
  b.setAttribute('aria-pressed', 'false');
  b.tabIndex = i === 0 ? 0 : -1; // one tab stop for all tokens; arrow keys move between them
  if (token?.logprob != null) b.title = `${token.text}: ${pct(token.logprob)}`;
  el.tokens.append(b);
}

function tokenButton(i) {
  return el.tokens.querySelector(`.tok[data-i="${i}"]`);
}

el.tokens.addEventListener('pointerover', (e) => { const b = e.target.closest('.tok'); if (b) setHovered(Number(b.dataset.i)); });
el.tokens.addEventListener('pointerout', (e) => { const b = e.target.closest('.tok'); if (b && !b.contains(e.relatedTarget)) setHovered(-1); });
el.tokens.addEventListener('focusin', (e) => {
  const b = e.target.closest('.tok');
  if (!b) return;
  for (const other of el.tokens.querySelectorAll('.tok[tabindex="0"]')) other.tabIndex = -1;
  b.tabIndex = 0;
  setHovered(Number(b.dataset.i));
});
el.tokens.addEventListener('focusout', () => setHovered(-1));
el.tokens.addEventListener('click', (e) => {
  const b = e.target.closest('.tok');
  if (b) select(Number(b.dataset.i) === state.selected ? -1 : Number(b.dataset.i));
});
el.tokens.addEventListener('keydown', (e) => {
  const b = e.target.closest('.tok');
  if (!b) return;
  const i = Number(b.dataset.i);
  const next = e.key === 'ArrowRight' || e.key === 'ArrowDown' ? i + 1 : e.key === 'ArrowLeft' || e.key === 'ArrowUp' ? i - 1
    : e.key === 'Home' ? 0 : e.key === 'End' ? state.tokens.length - 1 : null;
  if (e.key === 'Escape') { select(-1); return; }
  if (next === null || next < 0 || next >= state.tokens.length) return;
  e.preventDefault();
  tokenButton(next).focus();
});

el.allMap.addEventListener('pointerenter', () => setHovered(ALL));
el.allMap.addEventListener('pointerleave', () => setHovered(-1));
el.allMap.addEventListener('focus', () => setHovered(ALL));
el.allMap.addEventListener('blur', () => setHovered(-1));
el.allMap.addEventListener('click', () => select(state.selected === ALL ? -1 : ALL));

function setHovered(i) {
  state.hovered = i;
  for (const b of el.tokens.querySelectorAll('.tok.hover')) b.classList.remove('hover');
  if (i >= 0) tokenButton(i)?.classList.add('hover');
  drawActiveMap();
}

function select(i) {
  if (state.selected >= 0) tokenButton(state.selected)?.setAttribute('aria-pressed', 'false');
  state.selected = i;
  if (i >= 0) tokenButton(i)?.setAttribute('aria-pressed', 'true');
  el.allMap.setAttribute('aria-pressed', String(i === ALL));
  showTokenInfo(i);
  drawActiveMap();
}

function cell(tag, text) {
  const c = document.createElement(tag);
  c.textContent = text;
  return c;
}

function showTokenInfo(i) {
  const entry = state.tokens[i];
  el.info.replaceChildren();
  el.info.hidden = !entry;
  if (!entry) return;
  const { token, delta } = entry;
  const head = document.createElement('p');
  head.style.margin = '0';
  head.append(cell('strong', JSON.stringify(token?.text ?? delta)));
  if (token?.id != null) head.append(` · id ${token.id}`);
  if (token?.logprob != null) head.append(` · probability ${pct(token.logprob)} (log-probability ${logp(token.logprob)})`);
  const a = token?.attention;
  if (a?.imageShare != null) head.append(` · ${(a.imageShare * 100).toFixed(0)} % of attention on the image`);
  if (a) head.append(` · map: ${a.aggregation}, ${a.rows}×${a.cols}`);
  el.info.append(head);
  if (token?.top?.length) {
    const table = document.createElement('table');
    const caption = document.createElement('caption');
    caption.textContent = 'Top alternatives at this position';
    caption.style.textAlign = 'left';
    table.append(caption);
    const hr = document.createElement('tr');
    hr.append(cell('th', 'token'), cell('th', 'probability'), cell('th', ''));
    table.append(hr);
    for (const alt of token.top) {
      const tr = document.createElement('tr');
      const bar = document.createElement('span');
      bar.className = 'bar';
      bar.style.width = `${Math.max(1, Math.exp(alt.logprob) * 8).toFixed(2)}rem`;
      const barCell = document.createElement('td');
      barCell.append(bar);
      const name = cell('td', alt.text);
      if (alt.id === token.id) name.style.fontWeight = '600';
      tr.append(name, cell('td', pct(alt.logprob)), barCell);
      table.append(tr);
    }
    el.info.append(table);
  } else if (token?.logprob == null) {
    el.info.append(cell('p', 'No probabilities for this token.'));
  }
}

function showGeneration(g) {
  if (!g) return;
  el.allMap.hidden = !state.tokens.some((t) => t.token?.attention);
  if (g.warnings?.length) {
    el.warnings.textContent = g.warnings.map((w) => `${w.message} (${w.code})`).join('\n');
    el.warnings.hidden = false;
  }
  const t = g.timings;
  const ms = (v) => `${v.toFixed(1)} ms`;
  const rows = [
    ['model', g.model],
    ['finish', g.finishReason.toLowerCase()],
    ['tokens', `${g.usage.completionTokens} generated · ${g.usage.promptTokens} prompt · ${g.usage.imageTokens} image`],
    ['queue', ms(t.queueMs)],
    ['image encode', `${ms(t.imageEncodeMs)}${t.imageCached ? ' (cached)' : ''}`],
    ['prefill', ms(t.prefillMs)],
    ['decode', `${ms(t.decodeMs)}${t.decodeMs > 0 && g.usage.completionTokens > 1 ? ` (${Math.round((g.usage.completionTokens - 1) / (t.decodeMs / 1000))} tok/s)` : ''}`],
    ['total', ms(t.totalMs)],
  ];
  const c = g.confidence;
  if (c?.tokens > 0 && c.perplexity != null) rows.push(['confidence', `perplexity ${c.perplexity.toFixed(2)} · least likely token ${pct(c.minLogprob)}`]);
  if (t.draftedTokens > 0) rows.push(['speculative', `${t.acceptedTokens} of ${t.draftedTokens} drafts accepted (${Math.round((t.acceptanceRate ?? 0) * 100)} %)`]);
  el.stats.replaceChildren(...rows.flatMap(([k, v]) => {
    const dd = cell('dd', v);
    dd.dataset.key = k;
    return [cell('dt', k), dd];
  }));
}

// ---------------------------------------------------------------- heatmap

// Viridis (perceptually uniform, luminance rising with the value), 10 stops interpolated to 256.
const VIRIDIS_STOPS = ['440154', '482878', '3e4a89', '31688e', '26828e', '1f9e89', '35b779', '6dcd59', 'b4de2c', 'fde725']
  .map((h) => [0, 2, 4].map((k) => parseInt(h.slice(k, k + 2), 16)));
const VIRIDIS = Array.from({ length: 256 }, (_, i) => {
  const x = (i / 255) * (VIRIDIS_STOPS.length - 1);
  const k = Math.min(VIRIDIS_STOPS.length - 2, Math.floor(x));
  const f = x - k;
  return VIRIDIS_STOPS[k].map((c, j) => Math.round(c + (VIRIDIS_STOPS[k + 1][j] - c) * f));
});

function activeMap() {
  const i = state.hovered !== -1 ? state.hovered : state.selected;
  return i === ALL ? meanMap() : state.tokens[i]?.token?.attention ?? null;
}

/** The mean of the tokens' maps: where the model looked over the whole answer. */
function meanMap() {
  const maps = state.tokens.map((t) => t.token?.attention).filter(Boolean);
  if (!maps.length) return null;
  const { rows, cols } = maps[0];
  const weights = new Array(rows * cols).fill(0);
  for (const m of maps) if (m.rows === rows && m.cols === cols) m.weights.forEach((v, k) => { weights[k] += v / maps.length; });
  return { rows, cols, weights };
}

function drawActiveMap() {
  const map = activeMap();
  const canvas = el.heatmap;
  if (!map || !el.preview.naturalWidth || !map.rows || !map.cols || map.weights?.length !== map.rows * map.cols) {
    canvas.classList.add('off');
    return;
  }
  drawHeatmap(canvas, map, el.preview.clientWidth, el.preview.clientHeight);
  canvas.classList.remove('off');
}

/**
 * Draws a rows × cols grid, bilinearly upsampled, over the whole displayed image: the grid
 * covers the preprocessed square image, which is the whole picture resized, so cell (r, c)
 * maps to the same fraction of the displayed image's width and height.
 */
function drawHeatmap(canvas, { rows, cols, weights }, cssWidth, cssHeight) {
  const scale = Math.min(window.devicePixelRatio || 1, 2);
  const w = Math.max(1, Math.round(cssWidth * scale));
  const h = Math.max(1, Math.round(cssHeight * scale));
  canvas.width = w;
  canvas.height = h;
  canvas.dataset.rows = String(rows);
  canvas.dataset.cols = String(cols);
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of weights) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  const span = hi - lo || 1;
  const axis = (n, cells) => {
    const i0 = new Int32Array(n); const i1 = new Int32Array(n); const f = new Float32Array(n);
    for (let p = 0; p < n; p++) {
      const g = Math.min(cells - 1, Math.max(0, ((p + 0.5) * cells) / n - 0.5));
      i0[p] = Math.floor(g); i1[p] = Math.min(cells - 1, i0[p] + 1); f[p] = g - i0[p];
    }
    return { i0, i1, f };
  };
  const X = axis(w, cols);
  const Y = axis(h, rows);
  const ctx = canvas.getContext('2d');
  const image = ctx.createImageData(w, h);
  const px = image.data;
  for (let y = 0; y < h; y++) {
    const r0 = Y.i0[y] * cols; const r1 = Y.i1[y] * cols; const fy = Y.f[y];
    for (let x = 0; x < w; x++) {
      const a = weights[r0 + X.i0[x]]; const b = weights[r0 + X.i1[x]];
      const c = weights[r1 + X.i0[x]]; const d = weights[r1 + X.i1[x]];
      const fx = X.f[x];
      const v = (a + (b - a) * fx) * (1 - fy) + (c + (d - c) * fx) * fy;
      const t = (v - lo) / span;
      const rgb = VIRIDIS[Math.round(t * 255)];
      const o = (y * w + x) * 4;
      // Low attention is fainter, so the picture shows through where the model did not look.
      px[o] = rgb[0]; px[o + 1] = rgb[1]; px[o + 2] = rgb[2]; px[o + 3] = Math.round(255 * (0.2 + 0.8 * t));
    }
  }
  ctx.putImageData(image, 0, 0);
}

// ---------------------------------------------------------------- start

updateTask();
loadModels().catch((e) => showError(`Could not list the models: ${e.message}`));
