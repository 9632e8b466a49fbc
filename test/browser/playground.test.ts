// The web playground (src/server/playground/) in a real browser: Debian's chromium driven by
// playwright-core, against `npm start`'s own wiring on the shipped model, on 127.0.0.1.
// Skipped (with the reason in the suite's name) when chromium or the shipped model is absent;
// `bash training/install-deps.sh` installs chromium, and CI runs it first.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import sharp from 'sharp';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/settings.ts';
import type { IrisServer } from '../../src/server/listen.ts';
import { startServer } from '../../src/server.ts';
import { ROOT, isShippedModelPresent, waitForReady } from '../helpers.ts';
import { startImageHost, type ImageHost } from '../socket/support.ts';

const CHROMIUM = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p): p is string => Boolean(p && existsSync(p)));
const SAMPLES = join(ROOT, 'assets/samples');
const SCREENSHOT = join(ROOT, 'docs/playground.png');
const skipReason = !CHROMIUM
  ? ' (skipped: no chromium; `bash training/install-deps.sh` installs it, or set CHROMIUM_PATH)'
  : !isShippedModelPresent ? ' (skipped: assets/models/shapes-base is absent)' : '';

interface Sample {
  image: string;
  caption: string;
  questions: Array<{ question: string; answer: string }>;
}
const samples = readFileSync(join(SAMPLES, 'labels.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Sample);
const sample = (name: string): Sample => samples.find((s) => s.image === name)!;

/** The shapes world's palette (training/shapes.py), each object jittered by up to ±20 per channel. */
const PALETTE: Record<string, [number, number, number]> = {
  red: [220, 30, 30], green: [30, 170, 50], blue: [40, 70, 220], yellow: [240, 210, 30], purple: [140, 50, 170], orange: [245, 130, 20],
};
const BACKGROUNDS: Array<[number, number, number]> = [[255, 255, 255], [128, 128, 128], [0, 0, 0]];

/** The bounding box, as fractions of the image, of the pixels whose nearest palette or background color is `color`. */
async function colorBox(file: string, color: string): Promise<{ x0: number; y0: number; x1: number; y1: number }> {
  const { data, info } = await sharp(join(SAMPLES, file)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const refs = [...Object.entries(PALETTE), ...BACKGROUNDS.map((rgb, i) => [`bg${i}`, rgb] as const)];
  let [x0, y0, x1, y1] = [Infinity, Infinity, -Infinity, -Infinity];
  for (let y = 0; y < info.height; y++) {
    for (let x = 0; x < info.width; x++) {
      const o = (y * info.width + x) * 3;
      const d = (rgb: readonly number[]) => (data[o] - rgb[0]) ** 2 + (data[o + 1] - rgb[1]) ** 2 + (data[o + 2] - rgb[2]) ** 2;
      const nearest = refs.reduce((best, r) => (d(r[1]) < d(best[1]) ? r : best));
      if (nearest[0] === color && d(nearest[1]) < 45 ** 2) [x0, y0, x1, y1] = [Math.min(x0, x), Math.min(y0, y), Math.max(x1, x + 1), Math.max(y1, y + 1)];
    }
  }
  if (!(x1 > x0)) throw new Error(`no ${color} pixels in ${file}`);
  return { x0: x0 / info.width, y0: y0 / info.height, x1: x1 / info.width, y1: y1 / info.height };
}

/** Where the heatmap canvas is brightest (viridis: luminance rises with the value), as fractions of its size. */
async function brightestPoint(page: Page): Promise<{ x: number; y: number; width: number; height: number; visible: boolean }> {
  return page.evaluate(() => {
    const canvas = document.getElementById('heatmap') as HTMLCanvasElement;
    const { width, height } = canvas;
    const px = canvas.getContext('2d')!.getImageData(0, 0, width, height).data;
    let max = -1;
    const lum = new Float32Array(width * height);
    for (let i = 0; i < lum.length; i++) max = Math.max(max, (lum[i] = 0.2126 * px[i * 4] + 0.7152 * px[i * 4 + 1] + 0.0722 * px[i * 4 + 2]));
    let [sx, sy, n] = [0, 0, 0];
    for (let i = 0; i < lum.length; i++) if (lum[i] >= max - 0.5) [sx, sy, n] = [sx + (i % width) + 0.5, sy + Math.floor(i / width) + 0.5, n + 1];
    const img = document.getElementById('preview') as HTMLImageElement;
    const visible = !canvas.classList.contains('off') && getComputedStyle(canvas).visibility !== 'hidden';
    return { x: sx / n / width, y: sy / n / height, width: canvas.getBoundingClientRect().width / img.clientWidth, height: canvas.getBoundingClientRect().height / img.clientHeight, visible };
  });
}

describe.skipIf(skipReason !== '')(`the web playground in chromium${skipReason}`, () => {
  let server: IrisServer;
  let host: ImageHost;
  let browser: Browser;
  let base: string;
  let attention = false;
  const pageErrors: string[] = [];
  afterEach(() => expect(pageErrors.splice(0)).toEqual([]));

  const api = async (query: string, variables: Record<string, unknown>) =>
    (await (await fetch(server.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) })).json()) as {
      data?: Record<string, { text: string } | null>;
      errors?: Array<{ message: string; extensions?: { code?: string } }>;
    };
  const base64Of = (file: string) => readFileSync(join(SAMPLES, file)).toString('base64');

  beforeAll(async () => {
    host = await startImageHost({ '/scene-3.png': (_, res) => res.writeHead(200, { 'content-type': 'image/png' }).end(readFileSync(join(SAMPLES, 'scene-3.png'))) });
    server = await startServer(loadConfig(['--port', '0', '--url-allow', '127.0.0.1'], {}));
    await waitForReady(server.url);
    base = server.url.replace(/\/graphql$/, '');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
    // The agreed API: `models { attention }` says which models have maps; servers before it have no such field.
    const probe = await api('{ models { id attention } }', {});
    attention = probe.data !== undefined && (probe.data.models as unknown as Array<{ attention?: boolean }>).some((m) => m.attention === true);
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await host?.close();
  });

  async function open(viewport = { width: 1100, height: 760 }, touch = false): Promise<Page> {
    const page = await browser.newPage({ viewport, hasTouch: touch, isMobile: touch });
    page.setDefaultTimeout(20_000);
    const offsite: string[] = [];
    page.on('request', (r) => { if (!r.url().startsWith(base) && !r.url().startsWith('data:')) offsite.push(r.url()); });
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(`${base}/`);
    await page.waitForSelector('#model option', { state: 'attached' });
    expect(offsite.filter((u) => !u.startsWith(host.base))).toEqual([]);
    return page;
  }

  async function run(page: Page, file: string | { name: string; mimeType: string; buffer: Buffer }, task: 'caption' | 'answer' | 'generate' = 'caption', text?: string): Promise<void> {
    await page.setInputFiles('#file', typeof file === 'string' ? join(SAMPLES, file) : file);
    await page.check(`input[name=task][value=${task}]`);
    if (text !== undefined) await page.fill('#prompt', text);
    await page.click('#run');
    await page.waitForFunction(() => (document.getElementById('stop') as HTMLButtonElement).disabled && document.getElementById('status')!.textContent !== 'Generating…');
  }

  it('streams the caption the API gives, with timings, the model and each token’s probability and alternatives', async () => {
    const page = await open();
    const file = 'scene-1.png';
    const result = (await api('query($i: String!) { caption(image: { base64: $i }) { text tokens { id } } }', { i: base64Of(file) })).data!.caption as unknown as { text: string; tokens: unknown[] };
    await run(page, file);
    expect(await page.textContent('#error')).toBe('');
    expect(await page.textContent('#tokens')).toBe(result.text);
    const tokens = page.locator('#tokens .tok');
    expect(await tokens.count()).toBe(result.tokens.length);
    expect(await page.textContent('#stats dd[data-key=model]')).toBe('shapes-base');
    expect(await page.textContent('#stats dd[data-key=total]')).toMatch(/^\d+\.\d ms$/);
    // On demand: a click (or tap, or Enter) shows the probability and the top 5 alternatives.
    await tokens.nth(2).click();
    await expect.poll(() => page.locator('#token-info').isVisible()).toBe(true);
    expect(await page.textContent('#token-info')).toMatch(/probability \d+(\.\d)? %/);
    expect(await page.locator('#token-info tr').count()).toBe(1 + 5);
    if (!attention) {
      // Before the server has attention maps the page says so and draws nothing.
      await tokens.nth(2).hover();
      expect((await brightestPoint(page)).visible).toBe(false);
      expect(await page.textContent('#attention-note')).toMatch(/does not offer attention maps|no attention maps/);
    }
    // A speculative mode gives no maps: the page then asks for none (the API would refuse the pair).
    await page.selectOption('#speculative', 'DRAFT');
    expect(await page.isEnabled('#attention')).toBe(false);
    const { data } = await api('query($i: String!) { caption(image: { base64: $i }, options: { speculative: DRAFT }) { text } }', { i: base64Of(file) });
    await page.click('#run');
    await page.waitForFunction(() => (document.getElementById('stop') as HTMLButtonElement).disabled && document.getElementById('status')!.textContent !== 'Generating…');
    expect(await page.textContent('#error')).toBe('');
    expect(await page.textContent('#tokens')).toBe(data!.caption!.text);
    expect(await page.textContent('#stats dd[data-key=speculative]')).toMatch(/^\d+ of \d+ drafts accepted/);
    await page.close();
  });

  it('answers a question typed into the page as the API does', async () => {
    const page = await open();
    const s = sample('scene-2.png');
    const q = s.questions[0].question;
    const expected = (await api('query($i: String!, $q: String!) { answer(image: { base64: $i }, question: $q) { text } }', { i: base64Of(s.image), q })).data!.answer!.text;
    await run(page, s.image, 'answer', q);
    expect(await page.textContent('#tokens')).toBe(expected);
    expect(await page.isVisible('#warnings')).toBe(false);
    // Words the model cannot read: the API's warning is shown with the answer.
    const odd = 'what is in this photo?';
    const { data } = await api('query($i: String!, $q: String!) { answer(image: { base64: $i }, question: $q) { text warnings { code message } } }', { i: base64Of(s.image), q: odd });
    const { text, warnings } = data!.answer as unknown as { text: string; warnings: Array<{ code: string; message: string }> };
    expect(warnings.length).toBeGreaterThan(0);
    await run(page, s.image, 'answer', odd);
    expect(await page.textContent('#tokens')).toBe(text);
    expect(await page.textContent('#warnings')).toBe(warnings.map((w) => `${w.message} (${w.code})`).join('\n'));
    await page.close();
  });

  it('shows the API’s error message and code for a file that is not an image', async () => {
    const page = await open();
    const buffer = Buffer.from('these bytes are not a picture\n');
    const { errors } = await api('query($i: String!) { caption(image: { base64: $i }) { text } }', { i: buffer.toString('base64') });
    const { message, extensions } = errors![0];
    await run(page, { name: 'notes.png', mimeType: 'image/png', buffer });
    expect(await page.isVisible('#error')).toBe(true);
    expect(await page.textContent('#error')).toBe(`${message} (${extensions!.code})`);
    expect(await page.locator('#tokens .tok').count()).toBe(0);
    await page.close();
  });

  it('takes the image by drop, by paste and by URL', async () => {
    const page = await open();
    const send = async (kind: 'drop' | 'paste', file: string) => {
      await page.evaluate(([kind, name, b64]) => {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], name, { type: 'image/png' }));
        const target = document.getElementById('drop')!;
        if (kind === 'drop') target.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
        else target.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
      }, [kind, file, base64Of(file)] as const);
      await page.waitForFunction(() => (document.getElementById('preview') as HTMLImageElement).naturalWidth > 0 && !(document.getElementById('run') as HTMLButtonElement).disabled);
      await page.click('#run');
      await page.waitForFunction(() => (document.getElementById('stop') as HTMLButtonElement).disabled && document.getElementById('status')!.textContent !== 'Generating…');
    };
    for (const [kind, file] of [['drop', 'scene-4.png'], ['paste', 'scene-5.png']] as const) {
      await send(kind, file);
      expect(await page.textContent('#error'), kind).toBe('');
      expect(await page.textContent('#tokens'), kind).toBe((await api('query($i: String!) { caption(image: { base64: $i }) { text } }', { i: base64Of(file) })).data!.caption!.text);
    }
    const url = `${host.base}/scene-3.png`;
    await page.fill('#url', url);
    await page.press('#url', 'Enter');
    await page.waitForFunction(() => (document.getElementById('preview') as HTMLImageElement).naturalWidth > 0);
    await page.click('#run');
    await page.waitForFunction(() => (document.getElementById('stop') as HTMLButtonElement).disabled && document.getElementById('status')!.textContent !== 'Generating…');
    expect(await page.textContent('#tokens')).toBe((await api('query($u: String!) { caption(image: { url: $u }) { text } }', { u: url })).data!.caption!.text);
    await page.close();
  });

  it('works on a phone-sized screen without sideways scrolling', async () => {
    const page = await open({ width: 375, height: 740 }, true);
    await run(page, 'scene-0.png');
    expect(await page.textContent('#tokens')).toBe(sample('scene-0.png').caption);
    // A tap pins a token: its details, and its map when the server has maps.
    await page.locator('#tokens .tok').nth(3).tap();
    expect(await page.isVisible('#token-info')).toBe(true);
    expect((await brightestPoint(page)).visible).toBe(attention);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    const box = (await page.locator('#preview').boundingBox())!;
    expect(box.x).toBeGreaterThanOrEqual(0);
    expect(box.x + box.width).toBeLessThanOrEqual(375);
    await page.close();
  });

  it('lights up the object each size, color and shape word describes (pointing check on the page’s pixels)', async (ctx) => {
    if (!attention) ctx.skip('the server reports no model with attention maps yet (models { attention } is absent or false)');
    const page = await open();
    // Scenes whose objects have different colors, so each phrase's color finds its object's box.
    for (const s of [sample('scene-1.png'), sample('scene-2.png')]) {
      await run(page, s.image);
      expect(await page.textContent('#error')).toBe('');
      const words = (await page.locator('#tokens .tok').allTextContents()).map((w) => w.trim());
      let checked = 0;
      for (const [i, word] of words.entries()) {
        const kind = word in PALETTE ? 'color' : ['small', 'large'].includes(word) ? 'size' : ['circle', 'square', 'triangle'].includes(word) ? 'shape' : null;
        if (!kind) continue;
        const color = kind === 'color' ? word : kind === 'size' ? words[i + 1] : words[i - 1]; // "<size> <color> <shape>"
        await page.locator('#tokens .tok').nth(i).hover();
        const point = await brightestPoint(page);
        expect(point.visible).toBe(true);
        const cols = Number(await page.evaluate(() => (document.getElementById('heatmap') as HTMLCanvasElement).dataset.cols));
        const half = 0.5 / cols; // the pointing game's tolerance: half a patch
        const box = await colorBox(s.image, color);
        const where = `${s.image} "${word}" (${kind} of the ${color} object): brightest at (${point.x.toFixed(3)}, ${point.y.toFixed(3)}), box ${JSON.stringify(box)}`;
        expect(point.x >= box.x0 - half && point.x <= box.x1 + half && point.y >= box.y0 - half && point.y <= box.y1 + half, where).toBe(true);
        checked++;
      }
      expect(checked, s.caption).toBe(s.caption.split(/[ ,]+/).filter((w) => w in PALETTE).length * 3);
    }
    await page.close();
  });

  it('draws a streamed map where its weights are, over the whole image, by pointer and keyboard (API stubbed to the agreed fields)', async () => {
    // Independent of the engine: /graphql answers with the agreed schema's fields, one map
    // per token whose peak is a known cell, so the page's drawing is checked on its own.
    const page = await browser.newPage({ viewport: { width: 1100, height: 760 } });
    page.setDefaultTimeout(20_000);
    const [rows, cols] = [8, 8];
    const peaks = [[1, 6], [5, 2], [6, 6]];
    const words = ['a', ' red', ' circle'];
    let sentOptions: Record<string, unknown> | undefined;
    let modelQueries = 0;
    await page.route(`${base}/graphql`, async (route) => {
      const body = JSON.parse(route.request().postData() ?? '{}') as { query: string; variables: { options?: Record<string, unknown> } };
      if (!body.query.startsWith('subscription')) {
        // Loading at first (as right after `npm start`): the page looks again until it is in.
        const loading = modelQueries++ === 0;
        return route.fulfill({ json: { data: { models: [{ id: 'stub', ready: !loading, default: true, dtype: 'fp32', state: loading ? 'LOADING' : 'READY', attention: !loading }] } } });
      }
      sentOptions = body.variables.options;
      const events: unknown[] = words.map((delta, i) => {
        const weights = Array.from({ length: rows * cols }, (_, k) => (k === peaks[i][0] * cols + peaks[i][1] ? 0.37 : 0.01));
        const token = { id: i + 5, text: delta.trim(), logprob: -0.1 * (i + 1), top: [{ id: i + 5, text: delta.trim(), logprob: -0.1 * (i + 1) }, { id: 40, text: 'blue', logprob: -2.5 }], attention: { rows, cols, weights, aggregation: 'stub', imageShare: 0.8 } };
        return { data: { event: { delta, done: false, token, generation: null } } };
      });
      const timings = { queueMs: 0.1, imageEncodeMs: 1, imageCached: false, prefillMs: 0.5, decodeMs: 2, totalMs: 4, draftedTokens: 0, acceptedTokens: 0, acceptanceRate: null };
      events.push({ data: { event: { delta: '', done: true, token: null, generation: { text: words.join(''), finishReason: 'EOS', model: 'stub', usage: { promptTokens: 1, imageTokens: 64, completionTokens: 3 }, timings } } } });
      const sse = `${events.map((e) => `event: next\ndata: ${JSON.stringify(e)}\n\n`).join('')}event: complete\ndata:\n\n`;
      return route.fulfill({ status: 200, headers: { 'content-type': 'text/event-stream' }, body: sse });
    });
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(`${base}/`);
    await page.waitForSelector('#model option', { state: 'attached' });
    expect(await page.textContent('#model option')).toBe('stub — loading');
    await expect.poll(() => page.isEnabled('#attention'), { timeout: 5_000 }).toBe(true);
    expect(await page.textContent('#model option')).toBe('stub');
    await run(page, 'scene-1.png');
    expect(sentOptions).toMatchObject({ attention: true, logprobs: true, topLogprobs: 5 });
    expect(await page.textContent('#tokens')).toBe('a red circle');
    const near = (point: { x: number; y: number }, [r, c]: number[]) => {
      expect(Math.abs(point.x - (c + 0.5) / cols)).toBeLessThanOrEqual(0.5 / cols);
      expect(Math.abs(point.y - (r + 0.5) / rows)).toBeLessThanOrEqual(0.5 / rows);
    };
    const tokens = page.locator('#tokens .tok');
    expect((await brightestPoint(page)).visible).toBe(false);
    for (const i of [0, 1, 2]) {
      await tokens.nth(i).hover();
      const point = await brightestPoint(page);
      expect(point.visible).toBe(true);
      expect(point.width).toBeCloseTo(1, 2); // the grid spans the whole displayed image
      expect(point.height).toBeCloseTo(1, 2);
      near(point, peaks[i]);
    }
    // Keyboard: focus a token, arrow to the next; Enter pins it and shows its details.
    await page.mouse.move(0, 0);
    await tokens.nth(0).focus();
    near(await brightestPoint(page), peaks[0]);
    await page.keyboard.press('ArrowRight');
    expect(await page.evaluate(() => (document.activeElement as HTMLElement).dataset.i)).toBe('1');
    near(await brightestPoint(page), peaks[1]);
    await page.keyboard.press('Enter');
    expect(await page.textContent('#token-info')).toContain('80 % of attention on the image');
    await page.keyboard.press('Shift+Tab'); // focus leaves the tokens (one tab stop): the pinned token's map stays
    expect(await page.evaluate(() => document.activeElement?.closest('#tokens'))).toBeNull();
    near(await brightestPoint(page), peaks[1]);
    // The whole answer's map, the mean of the tokens' maps: bright at each token's peak.
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('all-map');
    await page.keyboard.press('Enter');
    expect(await page.getAttribute('#all-map', 'aria-pressed')).toBe('true');
    const levels = await page.evaluate((cells) => {
      const canvas = document.getElementById('heatmap') as HTMLCanvasElement;
      const ctx = canvas.getContext('2d')!;
      return cells.map(([r, c]) => ctx.getImageData(Math.floor(((c + 0.5) / 8) * canvas.width), Math.floor(((r + 0.5) / 8) * canvas.height), 1, 1).data[1]);
    }, [...peaks, [0, 0]]);
    expect(levels.slice(0, 3).every((g) => g > 200)).toBe(true); // viridis' top is yellow, green ≈ 231
    expect(levels[3]).toBeLessThan(60);
    await page.close();
  });

  // The README's picture is rewritten only when asked (IRIS_UPDATE_SCREENSHOT=1 npx vitest run test/browser),
  // so a test run leaves the tree as it was; otherwise the shot goes to the temp folder.
  it('takes a screenshot of the page (the README\'s picture)', async () => {
    const page = await open({ width: 1100, height: 720 });
    const s = sample('scene-2.png');
    await run(page, s.image);
    const tokens = page.locator('#tokens .tok');
    const red = (await tokens.allTextContents()).findIndex((w) => w.trim() === 'red');
    await tokens.nth(Math.max(0, red)).click(); // pinned: its details, and its map once the server has maps
    const target = process.env.IRIS_UPDATE_SCREENSHOT === '1' ? SCREENSHOT : join(tmpdir(), 'iris-playground.png');
    mkdirSync(dirname(target), { recursive: true });
    const png = await page.screenshot({ fullPage: true });
    writeFileSync(target, png);
    const meta = await sharp(png).metadata();
    expect(meta.width).toBe(1100);
    await page.close();
  });
});
