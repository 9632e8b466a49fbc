// Attention over GraphQL, on the real engine behind the in-process app: the models query
// says which models have maps, tokens carry them when asked, the overlay field is a PNG
// of the request's image at its own aspect ratio, and a model without the attentions
// variant answers ATTENTION_UNAVAILABLE.
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createConfig, createEngineConfig } from '../../src/config/config.ts';
import { createIrisApp, type IrisApp } from '../../src/server/app.ts';
import { createEngineLoader } from '../../src/server/load-models.ts';
import type { Engine } from '../../src/engine/engine.ts';
import { FIXTURES } from '../helpers.ts';
import { gql } from './support/app.ts';

describe('attention through GraphQL', () => {
  let app: IrisApp;
  const engines: Engine[] = [];
  let image: string;
  beforeAll(async () => {
    const config = createConfig({ models: { specs: [{ id: 'tiny', dir: FIXTURES.encoderDecoder }, { id: 'gpt2', dir: FIXTURES.gpt2 }] } });
    app = createIrisApp({ config, load: createEngineLoader({ engine: createEngineConfig({ imageWorkers: 0 }), onEngine: (_, e) => engines.push(e) }), logUnexpected: () => undefined });
    await app.registry.loaded;
    image = (await sharp({ create: { width: 96, height: 48, channels: 3, background: '#808080' } }).composite([{ input: Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="20" height="20"><circle cx="10" cy="10" r="9" fill="red"/></svg>'), left: 60, top: 14 }]).png().toBuffer()).toString('base64');
  });
  afterAll(async () => {
    await Promise.all(engines.map((e) => e.release()));
  });

  it('lists which models give maps', async () => {
    const res = await gql(app, '{ models { id attention } }');
    expect(res.body.data).toEqual({ models: [{ id: 'tiny', attention: true }, { id: 'gpt2', attention: false }] });
  });

  it('gives each token its map and an overlay PNG at the image aspect ratio', async () => {
    const query = `query($i: String!) { caption(image: { base64: $i }, model: "tiny", options: { attention: true, minNewTokens: 2, maxNewTokens: 4 }) {
      tokens { id attention { rows cols weights aggregation layers imageShare } } attentionOverlay(token: 0, width: 120) whole: attentionOverlay } }`;
    const res = await gql(app, query, { i: image });
    expect(res.body.errors).toBeUndefined();
    const caption = (res.body.data as { caption: { tokens: { attention: { rows: number; cols: number; weights: number[]; layers: number[][]; imageShare: number | null } }[]; attentionOverlay: string; whole: string } }).caption;
    expect(caption.tokens.length).toBeGreaterThanOrEqual(2);
    for (const { attention } of caption.tokens) {
      expect(attention.weights).toHaveLength(attention.rows * attention.cols);
      expect(attention.imageShare).toBeNull();
    }
    for (const [url, width] of [[caption.attentionOverlay, 120], [caption.whole, 96]] as const) {
      expect(url).toMatch(/^data:image\/png;base64,/);
      const meta = await sharp(Buffer.from(url.split(',')[1], 'base64')).metadata();
      expect([meta.width, meta.height]).toEqual([width, width / 2]);
    }
  });

  it('has no overlay without maps, refuses a token index out of range, and ATTENTION_UNAVAILABLE without the variant', async () => {
    const plain = await gql(app, 'query($i: String!) { caption(image: { base64: $i }, model: "tiny") { attentionOverlay } }', { i: image });
    expect(plain.body.data).toEqual({ caption: { attentionOverlay: null } });
    const bad = await gql(app, 'query($i: String!) { caption(image: { base64: $i }, model: "tiny", options: { attention: true }) { attentionOverlay(token: 999) } }', { i: image });
    expect(bad.body.errors?.[0].extensions?.code).toBe('INVALID_OPTIONS');
    const none = await gql(app, 'query($i: String!) { caption(image: { base64: $i }, model: "gpt2", options: { attention: true }) { text } }', { i: image });
    expect(none.body.errors?.[0].extensions?.code).toBe('ATTENTION_UNAVAILABLE');
  });
});
