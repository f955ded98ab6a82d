// imagestream's web page. It talks only to this server: /api/providers fills
// the pickers, POST /api/generate streams one run, /api/gallery and /files/*
// give the saved images. A run's server-sent events are read from a fetch()
// body rather than an EventSource, because a token-protected server needs the
// Authorization header and EventSource cannot send one.
'use strict';

const $ = (selector) => document.querySelector(selector);
const TOKEN_KEY = 'imagestream.token';
// Gallery thumbnails are held as blobs (they need the token): cap how many.
const GALLERY_LIMIT = 60;

const state = {
  token: sessionStorage.getItem(TOKEN_KEY) || '',
  tokenPrompt: null, // the open token dialog, shared by every request waiting for it
  providers: new Map(), // name -> provider entry of /api/providers
  run: null, // the generation in progress (see startRun)
  tiles: new Map(), // sample -> tile of the last run, kept until the next one starts
  thumbs: new Map(), // file URL -> object URL of its gallery thumbnail
  empty: $('#empty'), // the placeholder shown while there is no result
};

/** An error as the server reports them: type, message and an optional hint. */
class Problem extends Error {
  constructor({ type = 'Error', message = 'something went wrong', hint = null }) {
    super(message);
    this.type = type;
    this.hint = hint;
  }
}

/** A new element with properties and children: el('a', { href }, 'text'). */
function el(tag, props = {}, ...children) {
  const element = Object.assign(document.createElement(tag), props);
  element.append(...children);
  return element;
}

// ------------------------------------------------------------------ server
/** fetch() with the server token; a 401 asks for the token, then tries again. */
async function api(path, init = {}) {
  for (;;) {
    const sent = state.token;
    const headers = new Headers(init.headers);
    if (sent) headers.set('Authorization', `Bearer ${sent}`);
    const response = await fetch(path, { ...init, headers });
    if (response.status !== 401) return response;
    // Another request may have been given the token while this one was out.
    if (state.token && state.token !== sent) continue;
    const token = await askToken(sent ? 'The server refused that token.' : '');
    if (!token) return response;
  }
}

/** Open the token dialog once, however many requests are waiting for it. */
function askToken(message) {
  if (state.tokenPrompt) return state.tokenPrompt;
  const dialog = $('#token-dialog');
  state.tokenPrompt = new Promise((resolve) => {
    $('#token-error').textContent = message;
    $('#token-error').hidden = !message;
    $('#token-input').value = '';
    dialog.returnValue = '';
    dialog.addEventListener('close', () => {
      const token = dialog.returnValue === 'ok' ? $('#token-input').value.trim() : '';
      // Only this tab keeps it, and only for the session: never localStorage.
      state.token = token;
      if (token) sessionStorage.setItem(TOKEN_KEY, token);
      else sessionStorage.removeItem(TOKEN_KEY);
      state.tokenPrompt = null;
      resolve(token);
    }, { once: true });
    dialog.showModal();
  });
  return state.tokenPrompt;
}

/** The Problem a failed response describes: its JSON error, else its status. */
async function responseProblem(response) {
  try {
    const body = await response.json();
    if (body && body.error) return new Problem(body.error);
  } catch {
    // Not JSON (a proxy's page, say): the status line is all there is.
  }
  return new Problem({ type: `HTTP ${response.status}`, message: response.statusText || 'request failed' });
}

/** api() for a response that must succeed: a failure is thrown as its Problem. */
async function fetchOk(path, init) {
  const response = await api(path, init);
  if (!response.ok) throw await responseProblem(response);
  return response;
}

// Read the server-sent events of a response body, calling onEvent(name, data).
// Comments (the server's keep-alive pings) and ids are skipped: a run is never
// resumed, so Last-Event-ID has no use here.
async function readEvents(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let name = '';
  let data = [];
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let newline;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, newline).replace(/\r$/, '');
        buffer = buffer.slice(newline + 1);
        if (line === '') {
          // A blank line ends the event.
          if (data.length) onEvent(name || 'message', JSON.parse(data.join('\n')));
          name = '';
          data = [];
        } else if (!line.startsWith(':')) {
          const colon = line.indexOf(':');
          const field = colon < 0 ? line : line.slice(0, colon);
          const text = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
          if (field === 'event') name = text;
          else if (field === 'data') data.push(text);
        }
      }
    }
  } finally {
    // After a bad event too, close the connection: the server then stops the run.
    reader.cancel().catch(() => {});
  }
}

// --------------------------------------------------------------- providers
async function loadProviders() {
  try {
    const data = await (await fetchOk('/api/providers')).json();
    state.providers = new Map(data.providers.map((provider) => [provider.name, provider]));
    $('#provider').replaceChildren(...data.providers.map((provider) =>
      el('option', { value: provider.name, title: provider.description || '' }, provider.name)));
    $('#provider').value = data.default_provider || data.providers[0]?.name || '';
    fillModels();
    const count = data.providers.length;
    $('#server-status').textContent = `Connected · ${count} provider${count === 1 ? '' : 's'}`;
    return true;
  } catch (error) {
    $('#server-status').textContent = 'Not connected';
    showError(error);
    return false;
  }
}

/** The model list follows the provider; its default model comes preselected. */
function fillModels() {
  const provider = state.providers.get($('#provider').value);
  const options = (provider?.models || []).map((model) => new Option(model.id, model.id));
  if (!options.length) options.push(new Option('Provider default', ''));
  const select = $('#model');
  select.replaceChildren(...options);
  select.value = provider?.default_model || '';
  if (select.selectedIndex < 0) select.selectedIndex = 0;
  describeModel();
}

/** Say what the chosen model is and whether its previews are real. */
function describeModel() {
  const provider = state.providers.get($('#provider').value);
  if (!provider) return;
  const model = provider.models.find((entry) => entry.id === $('#model').value);
  const live = model ? model.streams_previews : provider.streams_previews;
  const badge = el('span', { className: live ? 'badge live' : 'badge' }, live ? 'Live previews' : 'Final image only');
  $('#model-info').replaceChildren(badge, ' ', model?.description || provider.description || '');
}

// -------------------------------------------------------------------- form
/** The request body: only the fields the user set, so providers keep their defaults. */
function readForm() {
  const body = { prompt: $('#prompt').value.trim() };
  if (!body.prompt) throw new Problem({ type: 'Input', message: 'write a prompt first' });
  if ($('#provider').value) body.provider = $('#provider').value;
  if ($('#model').value) body.model = $('#model').value;
  const size = $('#size').value === 'custom'
    ? $('#size-custom').value.replace(/\s+/g, '').replace('×', 'x')
    : $('#size').value;
  if (size) body.size = size;
  for (const [id, key] of [['#steps', 'steps'], ['#n', 'n'], ['#partial-images', 'partial_images'], ['#seed', 'seed']]) {
    const input = $(id);
    if (input.validity.badInput || (input.value !== '' && !Number.isSafeInteger(Number(input.value)))) {
      throw new Problem({ type: 'Input', message: `${key} must be a whole number` });
    }
    if (input.value !== '') body[key] = Number(input.value);
  }
  if ($('#output-format').value) body.output_format = $('#output-format').value;
  const options = $('#options').value.trim();
  if (options) {
    try {
      body.options = JSON.parse(options);
    } catch (error) {
      throw new Problem({ type: 'Input', message: `provider options are not JSON (${error.message})` });
    }
    if (!body.options || typeof body.options !== 'object' || Array.isArray(body.options)) {
      throw new Problem({ type: 'Input', message: 'provider options must be a JSON object', hint: '{"name": value, ...}' });
    }
  }
  return body;
}

// --------------------------------------------------------------------- run
async function generate() {
  if (state.run) return;
  let body;
  try {
    body = readForm();
  } catch (error) {
    showError(error);
    return;
  }
  const run = startRun(body);
  try {
    const response = await fetchOk('/api/generate', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'text/event-stream' },
      body: JSON.stringify(body),
      signal: run.controller.signal,
    });
    await readEvents(response.body, (name, data) => {
      // Events this page does not know (a newer server's) are skipped.
      if (Object.hasOwn(handlers, name)) handlers[name](run, data);
    });
    if (!run.finished) throw new Problem({ type: 'StreamError', message: 'the stream ended before the server said done' });
  } catch (error) {
    setStatus(run.controller.signal.aborted ? 'Cancelled' : 'Failed');
    if (!run.controller.signal.aborted) showError(error);
  } finally {
    endRun(run);
    // The pickers stay empty if the token was declined at first: try them again.
    if (!state.providers.size) loadProviders();
    loadGallery();
  }
}

/** Clear the last result (freeing its images) and set up a new run. */
function startRun(body) {
  for (const tile of state.tiles.values()) URL.revokeObjectURL(tile.url);
  state.tiles.clear();
  $('#results').replaceChildren();
  $('#results').dataset.previews = '0';
  for (const id of ['#text', '#thoughts', '#usage', '#error']) $(id).hidden = true;
  $('#text').textContent = '';
  $('#thought-text').textContent = '';
  const run = {
    controller: new AbortController(),
    n: body.n || 1,
    partials: body.partial_images || 0,
    size: body.size,
    progress: new Map(), // sample -> fraction done, or null when unknown
    previews: 0,
    finished: false,
  };
  state.run = run;
  setProgress(0);
  setStatus('Starting…');
  $('#progress').classList.remove('stopped');
  $('#generate').disabled = true;
  $('#cancel').disabled = false;
  return run;
}

function endRun(run) {
  if (state.run === run) state.run = null;
  if (!state.tiles.size) $('#results').replaceChildren(state.empty);
  if (!run.finished) $('#progress').classList.add('stopped');
  for (const tile of state.tiles.values()) tile.figure.classList.remove('running');
  $('#generate').disabled = false;
  $('#cancel').disabled = true;
}

function cancel() {
  if (!state.run) return;
  setStatus('Cancelling…');
  // Aborting closes the connection; the server then stops the provider.
  state.run.controller.abort();
}

// One handler per event name, called in the order the events arrive.
const handlers = {
  text_delta(run, data) {
    $(data.thought ? '#thought-text' : '#text').append(data.text);
    $(data.thought ? '#thoughts' : '#text').hidden = false;
  },
  image_preview(run, data) {
    const sample = data.sample || 0;
    const tile = tileFor(run, sample, data);
    showBlob(tile, base64Blob(data.image.b64, data.image.mime_type || data.mime_type));
    run.previews += 1;
    $('#results').dataset.previews = String(run.previews);
    run.progress.set(sample, previewFraction(run, data));
    setProgress(overallProgress(run));
    const parts = [];
    if (data.step != null && data.total_steps) parts.push(`step ${data.step + 1}/${data.total_steps}`);
    else parts.push(`preview ${(data.index || 0) + 1}`);
    if (data.sigma != null) parts.push(`σ ${data.sigma.toFixed(2)}`);
    tile.meta.textContent = parts.join(' · ');
    if (run.n > 1) parts.unshift(`Image ${sample + 1} of ${run.n}`);
    setStatus([...parts, `${run.previews} preview${run.previews === 1 ? '' : 's'}`].join(' · '));
  },
  image_final(run, data) {
    const sample = data.sample || 0;
    const tile = tileFor(run, sample, data);
    showBlob(tile, base64Blob(data.image.b64, data.image.mime_type || data.mime_type));
    tile.figure.classList.remove('running');
    tile.img.alt = data.revised_prompt || $('#prompt').value;
    const size = data.width && data.height ? `${data.width}×${data.height}` : '';
    tile.meta.replaceChildren(size);
    if (data.seed != null) tile.meta.append(size ? ' · ' : '', seedButton(data.seed));
    run.progress.set(sample, 1);
    setProgress(overallProgress(run));
  },
  // Progress without a picture (a provider that polls a percentage, a server's step count).
  progress(run, data) {
    const sample = data.sample || 0;
    let fraction = data.fraction;
    if (fraction == null && data.step != null && data.total_steps) {
      fraction = Math.min(1, (data.step + 1) / data.total_steps);
    }
    run.progress.set(sample, fraction == null ? null : fraction);
    setProgress(overallProgress(run));
    const parts = [];
    if (run.n > 1) parts.push(`Image ${sample + 1} of ${run.n}`);
    if (data.step != null && data.total_steps) parts.push(`step ${data.step + 1}/${data.total_steps}`);
    else if (data.fraction != null) parts.push(`${Math.round(data.fraction * 100)}%`);
    if (data.message) parts.push(data.message);
    setStatus(parts.join(' · ') || 'Working');
  },
  usage: (run, data) => showUsage(data, null),
  done(run, data) {
    run.finished = true;
    setProgress(1);
    if (data.usage || data.analytics) showUsage(data.usage, data.analytics);
    const seconds = data.analytics?.total_s;
    setStatus(seconds != null ? `Done in ${seconds.toFixed(2)} s` : 'Done');
    const saved = data.images || [];
    for (const image of saved) attachDownload(run, image);
    // A server that keeps no images (--no-save): the pictures shown are the downloads.
    if (!saved.length) for (const tile of state.tiles.values()) attachLocalDownload(tile);
  },
  error(run, data) {
    run.finished = true;
    setStatus('Failed');
    $('#progress').classList.add('stopped');
    showError(new Problem(data));
  },
};

/** Fraction of one sample done: sampler steps, else partial images, else unknown. */
function previewFraction(run, data) {
  if (data.step != null && data.total_steps) return Math.min(1, (data.step + 1) / data.total_steps);
  // Partial images come before the final one, which fills the rest of the bar.
  if (run.partials) return Math.min(1, ((data.index || 0) + 1) / (run.partials + 1));
  return null;
}

function overallProgress(run) {
  const fractions = [...run.progress.values()];
  if (fractions.includes(null)) return null;
  return fractions.reduce((sum, fraction) => sum + fraction, 0) / run.n;
}

// ------------------------------------------------------------------ images
/** The figure showing one sample of the run, made on its first image. */
function tileFor(run, sample, { width, height } = {}) {
  let tile = state.tiles.get(sample);
  if (!tile) {
    const img = el('img', { className: 'live', alt: `Image ${sample + 1}, in progress` });
    const meta = el('span', { className: 'meta' });
    const links = el('span', { className: 'links' });
    const figure = el('figure', { className: 'tile running' }, img, el('figcaption', {}, meta, links));
    figure.dataset.sample = String(sample);
    // Tiles stay in sample order whatever order their first images come in.
    const next = [...state.tiles.keys()].filter((key) => key > sample).sort((a, b) => a - b)[0];
    $('#results').insertBefore(figure, next == null ? null : state.tiles.get(next).figure);
    tile = { figure, img, meta, links, url: null };
    state.tiles.set(sample, tile);
  }
  // The known shape keeps the layout still while pictures arrive.
  const [w, h] = width && height ? [width, height] : (run.size || '').split('x').map(Number);
  if (w > 0 && h > 0) tile.figure.style.setProperty('--ratio', String(w / h));
  return tile;
}

/** Show a blob in a tile and free the picture it replaces: memory stays flat however many previews come. */
function showBlob(tile, blob) {
  const old = tile.url;
  tile.url = URL.createObjectURL(blob);
  tile.blobType = blob.type;
  tile.blobSize = blob.size;
  tile.img.src = tile.url;
  if (old) URL.revokeObjectURL(old);
}

function base64Blob(b64, type) {
  const binary = atob(b64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
  return new Blob([bytes], { type: type || 'application/octet-stream' });
}

// A download link for an image the server did not keep: the blob in the tile.
function attachLocalDownload(tile) {
  if (!tile.url || !tile.blobType) return;
  const ext = tile.blobType.replace('image/', '').replace('jpeg', 'jpg');
  const name = `imagestream-${Number(tile.figure.dataset.sample) + 1}.${ext}`;
  tile.links.append(el('a', { className: 'button small', download: name, href: tile.url, title: name },
    `Download ${ext.toUpperCase()} · ${formatBytes(tile.blobSize)}`));
}

// A download link for a saved image. The file is fetched with the token and
// then shown in the tile too, so one blob serves the picture and the link.
async function attachDownload(run, image) {
  const sample = image.sample || 0;
  const tile = tileFor(run, sample, image);
  const name = image.url.split('/').pop();
  const kind = (image.mime_type || '').replace('image/', '').toUpperCase();
  const link = el('a', { className: 'button small', download: name, title: name }, 'Download');
  link.setAttribute('aria-disabled', 'true');
  tile.links.append(link);
  try {
    const blob = await (await fetchOk(image.url)).blob();
    if (state.tiles.get(sample) !== tile) return; // a new run started meanwhile
    showBlob(tile, blob);
    link.href = tile.url;
    link.textContent = `Download ${kind} · ${formatBytes(image.bytes)}`;
    link.removeAttribute('aria-disabled');
  } catch (error) {
    link.textContent = 'Download unavailable';
    showError(error);
  }
}

function seedButton(seed) {
  const button = el('button', { type: 'button', className: 'link', title: 'Use this seed next time' }, `seed ${seed}`);
  button.addEventListener('click', () => { $('#seed').value = String(seed); });
  return button;
}

// ----------------------------------------------------------------- gallery
async function loadGallery() {
  let images;
  try {
    images = (await (await fetchOk('/api/gallery')).json()).images;
  } catch {
    $('#gallery-count').textContent = 'unavailable';
    return;
  }
  const shown = images.slice(0, GALLERY_LIMIT);
  const keep = new Set(shown.map((image) => image.url));
  for (const [url, objectUrl] of state.thumbs) {
    if (keep.has(url)) continue;
    URL.revokeObjectURL(objectUrl);
    state.thumbs.delete(url);
  }
  $('#gallery').replaceChildren(...shown.map(galleryItem));
  const total = images.length;
  $('#gallery-count').textContent = total > shown.length ? `newest ${shown.length} of ${total}` : `${total} saved`;
}

function galleryItem(image) {
  const when = new Date(image.modified * 1000).toLocaleString();
  const link = el('a', { className: 'thumb', download: image.name, title: `${image.name} · ${formatBytes(image.bytes)} · ${when}` },
    el('img', { alt: `Saved image ${image.name}` }));
  const item = el('li', {}, link);
  item.dataset.url = image.url;
  if (state.thumbs.has(image.url)) showThumb(item, state.thumbs.get(image.url));
  else thumbObserver.observe(item);
  return item;
}

// A thumbnail is fetched (with the token) only when it scrolls into view.
const thumbObserver = new IntersectionObserver((entries) => {
  for (const entry of entries) {
    if (!entry.isIntersecting) continue;
    thumbObserver.unobserve(entry.target);
    loadThumb(entry.target);
  }
}, { rootMargin: '200px' });

async function loadThumb(item) {
  const url = item.dataset.url;
  try {
    const blob = await (await fetchOk(url)).blob();
    // A refresh may have fetched it meanwhile: keep one object URL per file.
    if (!state.thumbs.has(url)) state.thumbs.set(url, URL.createObjectURL(blob));
    showThumb(item, state.thumbs.get(url));
  } catch {
    item.classList.add('broken');
  }
}

function showThumb(item, objectUrl) {
  item.querySelector('img').src = objectUrl;
  item.querySelector('a').href = objectUrl;
}

// ------------------------------------------------------------------ output
const setStatus = (text) => { $('#status').textContent = text; };

/** A fraction from 0 to 1, or null for "working, amount unknown". */
function setProgress(fraction) {
  const bar = $('#progress');
  bar.classList.toggle('indeterminate', fraction == null);
  if (fraction == null) return bar.removeAttribute('aria-valuenow');
  bar.setAttribute('aria-valuenow', String(Math.round(fraction * 100)));
  bar.style.setProperty('--done', `${fraction * 100}%`);
}

/** One line: "type: message — hint". */
function showError(error) {
  const type = error.type || error.name || 'Error';
  const hint = error.hint || (error instanceof TypeError ? 'is the server still running?' : null);
  $('#error').replaceChildren(el('strong', {}, `${type}: `), error.message || String(error), hint ? ` — ${hint}` : '');
  $('#error').hidden = false;
}

function showUsage(usage, analytics) {
  const parts = [];
  if (usage?.input_tokens != null) parts.push(`${usage.input_tokens} tokens in`);
  if (usage?.output_tokens != null) parts.push(`${usage.output_tokens} out`);
  if (usage?.thought_tokens) parts.push(`${usage.thought_tokens} thinking`);
  const cost = usage?.cost_usd ?? analytics?.cost_usd;
  if (cost != null) parts.push(`$${cost > 0 && cost < 0.01 ? cost.toFixed(4) : cost.toFixed(2)}`);
  if (analytics?.first_preview_s != null) parts.push(`first preview ${analytics.first_preview_s.toFixed(2)} s`);
  if (!parts.length) return;
  $('#usage').textContent = parts.join(' · ');
  $('#usage').hidden = false;
}

function formatBytes(bytes) {
  if (bytes == null) return '';
  return bytes < 1024 ** 2 ? `${Math.ceil(bytes / 1024)} KB` : `${(bytes / 1024 ** 2).toFixed(1)} MB`;
}

// ------------------------------------------------------------------- wiring
$('#form').addEventListener('submit', (event) => {
  event.preventDefault();
  generate();
});
$('#prompt').addEventListener('keydown', (event) => {
  // Enter generates; Shift+Enter (or Enter ending an IME composition) keeps typing.
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    $('#form').requestSubmit();
  }
});
document.addEventListener('keydown', (event) => {
  if (event.key === 'Escape' && state.run && !$('#token-dialog').open) cancel();
});
$('#cancel').addEventListener('click', cancel);
$('#provider').addEventListener('change', fillModels);
$('#model').addEventListener('change', describeModel);
$('#size').addEventListener('change', () => {
  $('#size-custom-field').hidden = $('#size').value !== 'custom';
  if ($('#size').value === 'custom') $('#size-custom').focus();
});
$('#token-cancel').addEventListener('click', () => $('#token-dialog').close('cancel'));
$('#gallery-refresh').addEventListener('click', loadGallery);

// The gallery after the providers: a token-protected server then asks only once
// (and not again at all if the visitor declined to give it).
loadProviders().then((ok) => ok && loadGallery());
