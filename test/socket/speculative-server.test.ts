// Speculative decoding through `npm start`'s wiring, over a real socket: the server's
// default (--speculative ngram), the per-request GraphQL option, the timings it reports
// (drafted, accepted, acceptance rate), its error codes, and its counters in /metrics.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/settings.ts';
import type { IrisServer } from '../../src/server/listen.ts';
import { startServer } from '../../src/server.ts';
import { plainCaptions } from '../engine/support.ts';
import { FIXTURES, waitForReady } from '../helpers.ts';

const QUERY = `query($i: ImageInput!, $o: GenerationOptions) {
  caption(image: $i, options: $o) { text timings { draftedTokens acceptedTokens acceptanceRate } }
}`;
const OPTIONS = { maxNewTokens: 16 };

interface Reply {
  data?: { caption: { text: string; timings: { draftedTokens: number; acceptedTokens: number; acceptanceRate: number | null } } } | null;
  errors?: { message: string; extensions?: { code?: string } }[];
}

describe('speculative decoding on the server (tiny-random)', () => {
  let server: IrisServer;
  let images: Uint8Array[];
  let expected: string[];
  beforeAll(async () => {
    ({ images, expected } = await plainCaptions(6, OPTIONS));
    const argv = ['--port', '0', '--model', `tiny=${FIXTURES.encoderDecoder}`, '--speculative', 'ngram', '--speculative-max-batch', '8'];
    server = await startServer(loadConfig(argv, {}));
    await waitForReady(server.url);
  });
  afterAll(() => server.close());

  const caption = async (image: Uint8Array, options: Record<string, unknown> = OPTIONS): Promise<Reply> => {
    const body = JSON.stringify({ query: QUERY, variables: { i: { base64: Buffer.from(image).toString('base64') }, o: options } });
    const res = await fetch(server.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    return (await res.json()) as Reply;
  };

  it('speculates by default with the plain greedy text, and reports drafted/accepted/rate', async () => {
    const replies = await Promise.all(images.map((image) => caption(image)));
    replies.forEach((r, i) => {
      expect(r.errors).toBeUndefined();
      expect(r.data?.caption.text).toBe(expected[i]);
    });
    const timings = replies.map((r) => r.data!.caption.timings);
    const drafted = timings.reduce((n, t) => n + t.draftedTokens, 0);
    expect(drafted).toBeGreaterThan(0);
    for (const t of timings) expect(t.acceptanceRate).toBe(t.draftedTokens > 0 ? t.acceptedTokens / t.draftedTokens : null);
  });

  it('takes the per-request option (OFF: nothing drafted) and rejects unknown modes and a missing draft model', async () => {
    const off = await caption(images[0], { ...OPTIONS, speculative: 'OFF' });
    expect(off.data?.caption).toEqual({ text: expected[0], timings: { draftedTokens: 0, acceptedTokens: 0, acceptanceRate: null } });
    const junk = await caption(images[0], { ...OPTIONS, speculative: 'SOMETIMES' });
    expect(junk.errors?.[0].message).toMatch(/SpeculativeMode/);
    const draft = await caption(images[0], { ...OPTIONS, speculative: 'DRAFT' });
    expect(draft.errors?.[0].extensions?.code).toBe('INVALID_OPTIONS');
  });

  it('exports drafted and accepted counters and the acceptance rate in /metrics', async () => {
    const text = await (await fetch(server.url.replace('/graphql', '/metrics'))).text();
    expect(text).toMatch(/iris_speculative_tokens_total\{model="tiny",kind="drafted"\} [1-9]/);
    expect(text).toMatch(/iris_speculative_tokens_total\{model="tiny",kind="accepted"\} \d/);
    expect(text).toMatch(/iris_speculative_acceptance_rate [0-9.]+/);
  });
});
