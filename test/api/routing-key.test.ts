import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { claimedKey, ROUTING_KEY_HEADER, useRoutingKey, type RoutingKeyCheck } from '../../src/server/plugins/routing-key.ts';
import { createTestApp } from './support/app.ts';
import { sceneAs, scenePng } from './support/images.ts';
import type { IrisApp } from '../../src/server/app.ts';

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

async function caption(app: IrisApp, images: Buffer[], key?: string): Promise<Response> {
  const fields = images.map((_, i) => `c${i}: caption(image: { base64: $i${i} }) { text }`).join('\n');
  const params = images.map((_, i) => `$i${i}: String!`).join(', ');
  const variables = Object.fromEntries(images.map((b, i) => [`i${i}`, b.toString('base64')]));
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/graphql-response+json' };
  if (key !== undefined) headers[ROUTING_KEY_HEADER] = key;
  return app.yoga.fetch('http://iris.test/graphql', {
    method: 'POST',
    headers,
    body: JSON.stringify({ query: `query (${params}) { ${fields} }`, variables }),
  });
}

describe('routing key (x-iris-image-key)', () => {
  it('returns the sha256 of the image bytes when the client sends none', async () => {
    const app = createTestApp();
    const png = await scenePng();
    const response = await caption(app, [png]);
    const body = (await response.json()) as { data?: { c0?: { text: string } }; errors?: unknown };
    expect(body.errors).toBeUndefined();
    expect(typeof body.data?.c0?.text).toBe('string');
    expect(response.headers.get(ROUTING_KEY_HEADER)).toBe(sha256(png));
  });

  it('confirms a right key and ignores a wrong one: same answer, the computed key back', async () => {
    const app = createTestApp();
    const png = await scenePng();
    const right = sha256(png);
    const wrong = sha256(Buffer.from('some other image'));

    const good = await caption(app, [png], right.toUpperCase());
    const bad = await caption(app, [png], wrong);
    const goodBody = await good.json();
    const badBody = await bad.json();
    expect(badBody).toEqual(goodBody);
    expect(good.headers.get(ROUTING_KEY_HEADER)).toBe(right);
    expect(bad.headers.get(ROUTING_KEY_HEADER)).toBe(right);
  });

  it('reports match and mismatch through onCheck', async () => {
    const png = await scenePng();
    const checks: RoutingKeyCheck[] = [];
    const plugin = useRoutingKey({ onCheck: (c) => checks.push(c) });
    // Drive the plugin's hooks as yoga does: context building wraps the intake, the
    // response hook compares and sets the header.
    const request = new Request('http://iris.test/graphql', { headers: { [ROUTING_KEY_HEADER]: sha256(Buffer.from('x')) } });
    let extended: { iris?: { intake: { read: (i: unknown) => Promise<unknown> } } } = {};
    const intake = { read: async () => ({ bytes: new Uint8Array(png), probe: {}, source: 'base64' }) };
    (plugin.onContextBuilding as (p: unknown) => void)({
      context: { request, iris: { intake, registry: {}, promptChars: 1 } },
      extendContext: (e: typeof extended) => (extended = e),
    });
    await extended.iris!.intake.read({ base64: 'x' });
    const response = new Response('{}');
    (plugin.onResponse as (p: unknown) => void)({ request, response });
    expect(checks).toEqual([{ claimed: sha256(Buffer.from('x')), computed: [sha256(png)], mismatch: true }]);
    expect(response.headers.get(ROUTING_KEY_HEADER)).toBe(sha256(png));
  });

  it('lists each distinct image a document reads, in order, once', async () => {
    const app = createTestApp();
    const png = await scenePng();
    const jpeg = await sceneAs('jpeg');
    const response = await caption(app, [png, jpeg, png]);
    expect(response.status).toBe(200);
    const keys = response.headers.get(ROUTING_KEY_HEADER)?.split(',') ?? [];
    expect(new Set(keys)).toEqual(new Set([sha256(png), sha256(jpeg)]));
    expect(keys).toHaveLength(2);
  });

  it('sets no key on requests that read no image', async () => {
    const app = createTestApp();
    const png = await scenePng();
    const response = await app.yoga.fetch('http://iris.test/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', [ROUTING_KEY_HEADER]: sha256(png) },
      body: JSON.stringify({ query: '{ __typename }' }),
    });
    expect(response.status).toBe(200);
    expect(response.headers.get(ROUTING_KEY_HEADER)).toBeNull();
  });

  it('counts each check in /metrics: match, mismatch, absent', async () => {
    const app = createTestApp();
    const png = await scenePng();
    const count = async (): Promise<Record<string, number>> => {
      const text = await (await app.yoga.fetch('http://iris.test/metrics')).text();
      return Object.fromEntries([...text.matchAll(/^iris_routing_key_checks_total\{result="(\w+)"\} (\d+)$/gm)].map((m) => [m[1], Number(m[2])]));
    };
    expect(await count()).toEqual({ match: 0, mismatch: 0, absent: 0 });
    await caption(app, [png], sha256(png));
    await caption(app, [png], sha256(Buffer.from('other')));
    await caption(app, [png], sha256(Buffer.from('another')));
    await caption(app, [png]);
    await caption(app, [png], 'not-a-key');
    expect(await count()).toEqual({ match: 1, mismatch: 2, absent: 2 });
  });

  it('accepts only a 64-hex-digit key as a claim', () => {
    expect(claimedKey(` ${'AB'.repeat(32)} `)).toBe('ab'.repeat(32));
    expect(claimedKey('abc')).toBeNull();
    expect(claimedKey(null)).toBeNull();
    expect(claimedKey('g'.repeat(64))).toBeNull();
  });
});
