// Inputs that once produced an INTERNAL_SERVER_ERROR, an undocumented code or ran what a
// limit should have stopped; each must now get a documented code (README "Error codes").
import { getIntrospectionQuery } from 'graphql';
import { describe, expect, it } from 'vitest';
import { createFakeGenerator } from './support/fake-generator.ts';
import { codes, createTestApp, gql } from './support/app.ts';
import { scenePng } from './support/images.ts';

const URL_ = 'http://iris.test/graphql';
const CAPTION = 'query($i: ImageInput!) { caption(image: $i) { text } }';
const JSON_HEADERS = { 'content-type': 'application/json', accept: 'application/graphql-response+json' };

async function send(app: ReturnType<typeof createTestApp>, init: RequestInit, url = URL_) {
  const response = await app.yoga.fetch(url, init);
  const text = await response.text();
  const body = JSON.parse(text) as { data?: unknown; errors?: Array<{ message: string; extensions?: { code?: string } }> };
  return { status: response.status, body, text, codes: (body.errors ?? []).map((e) => e.extensions?.code) };
}

function multipart(operations: unknown, map: unknown, file: Blob, headers: Record<string, string> = { 'graphql-require-preflight': '1' }): RequestInit {
  const form = new FormData();
  form.set('operations', JSON.stringify(operations));
  form.set('map', JSON.stringify(map));
  form.set('0', file, 'scene.png');
  return { method: 'POST', headers, body: form };
}

describe('upload given something that is not a file', () => {
  const generator = createFakeGenerator();
  const app = createTestApp({ generator });

  it.each([['a string', 'x'], ['a number', 1], ['an object', { a: 1 }], ['an empty object', {}], ['a list', [1]], ['true', true]])(
    'BAD_USER_INPUT for %s in JSON variables, naming where and never the value',
    async (_label, value) => {
      const res = await gql(app, CAPTION, { i: { upload: value } });
      expect(res.status).toBe(400);
      expect(codes(res)).toEqual(['BAD_USER_INPUT']);
      expect(res.body.errors?.[0].message).toMatch(/^Variable "\$i" got an invalid value at "i.upload"; File takes a file part of a multipart request/);
      expect(generator.requests).toHaveLength(0);
    },
  );

  it('GRAPHQL_VALIDATION_FAILED for a literal', async () => {
    const res = await gql(app, '{ caption(image: { upload: "x" }) { text } }');
    expect(codes(res)).toEqual(['GRAPHQL_VALIDATION_FAILED']);
  });

  it('a variables error never prints the value: not a multipart File, not a 1 MB string', async () => {
    const file = new Blob([new Uint8Array(await scenePng())], { type: 'image/png' });
    const res = await send(app, multipart({ query: 'query($f: String) { caption(image: { base64: $f }) { text } }', variables: { f: null } }, { 0: ['variables.f'] }, file));
    expect(res.codes).toEqual(['BAD_USER_INPUT']);
    expect(res.body.errors?.[0].message).toBe('Variable "$f" got an invalid value; String cannot represent a non string value');
    const long = await gql(app, 'query($n: Int) { caption(image: { base64: "x" }, options: { maxNewTokens: $n }) { text } }', { n: 'y'.repeat(1 << 20) });
    expect(codes(long)).toEqual(['BAD_USER_INPUT']);
    expect(JSON.stringify(long.body).length).toBeLessThan(1000);
  });
});

describe('documents are bounded before they are parsed', () => {
  const app = createTestApp();
  const deep = (open: string, inner: string, close: string, n = 5000) => open.repeat(n) + inner + close.repeat(n);

  it.each([
    ['fields', `{ ${deep('models { ', 'id', ' }')} }`],
    ['inline fragments', `{ ${deep('... on Query { ', '__typename', ' }')} }`],
    ['list literals', `{ caption(image: { base64: "x" }, options: { stop: ${deep('[', '"a"', ']')} }) { text } }`],
    ['object literals', `{ caption(image: { base64: "x" }, options: ${deep('{ a: ', '1', ' }')}) { text } }`],
  ])('QUERY_TOO_DEEP for 5,000 nested %s (it overflowed the parser\'s stack)', async (_label, query) => {
    const res = await gql(app, query);
    expect(res.status).toBe(400);
    expect(codes(res)).toEqual(['QUERY_TOO_DEEP']);
  });

  it('brackets inside strings, block strings and comments do not count', async () => {
    const blockString = `"""${'['.repeat(200)} \\""" ${'('.repeat(100)}"""`;
    const query = `{ generate(image: { base64: "${'{'.repeat(200)}" }, prompt: ${blockString}) { text } } # ${'('.repeat(200)}`;
    const res = await gql(app, query);
    expect(codes(res)).toEqual(['BAD_IMAGE']);
  });

  it('QUERY_TOO_LARGE for a document over --query-max-tokens', async () => {
    const res = await gql(app, `{ ${'__typename '.repeat(3000)}}`);
    expect(res.status).toBe(400);
    expect(codes(res)).toEqual(['QUERY_TOO_LARGE']);
    const small = createTestApp({ config: { limits: { queryTokens: 100 } } });
    expect(codes(await gql(small, `{ ${'__typename '.repeat(100)}}`))).toEqual(['QUERY_TOO_LARGE']);
    expect((await gql(small, `{ ${'__typename '.repeat(90)}}`)).body.data).toEqual({ __typename: 'Query' });
  });
});

describe('introspection is under the same limits', () => {
  const app = createTestApp();

  it('TOO_MANY_ALIASES for aliased __schema (1,000 of them answered 15.7 MB)', async () => {
    const query = `{ ${Array.from({ length: 50 }, (_, i) => `a${i}: __schema { types { name fields { name } } }`).join(' ')} }`;
    const res = await gql(app, query);
    expect(res.status).toBe(400);
    expect(codes(res)).toEqual(['TOO_MANY_ALIASES']);
  });

  it('QUERY_TOO_COSTLY for repeated introspection, QUERY_TOO_DEEP for a fan-out through types', async () => {
    const costly = await gql(app, `{ ${'__schema { types { name fields { name args { name } } } } '.repeat(100)}}`);
    expect(codes(costly)).toEqual(['QUERY_TOO_COSTLY']);
    const fan = `{ __type(name: "Query") { ${'fields { type { '.repeat(5)}name${' } }'.repeat(5)} } }`;
    const deep = await gql(app, fan);
    expect(codes(deep)).toContain('QUERY_TOO_DEEP');
  });

  it('GraphiQL\'s introspection query passes the default limits', async () => {
    const res = await gql(app, getIntrospectionQuery());
    expect(res.body.errors).toBeUndefined();
    expect((res.body.data as { __schema: { types: unknown[] } }).__schema.types.length).toBeGreaterThan(5);
  });
});

describe('malformed requests get BAD_REQUEST, not an internal error', () => {
  const app = createTestApp();

  it.each([
    ['variables', 'variables=%7Bx'],
    ['extensions', 'extensions=%7Bx'],
  ])('a GET whose %s is not JSON', async (_label, param) => {
    const res = await send(app, { method: 'GET', headers: { accept: 'application/json' } }, `${URL_}?query=%7B__typename%7D&${param}`);
    expect(res.status).toBe(400);
    expect(res.codes).toEqual(['BAD_REQUEST']);
  });

  it.each([['a number', 1], ['an object', { a: 1 }], ['null', null]])('a multipart map whose value is %s', async (_label, value) => {
    const file = new Blob([new Uint8Array(8)]);
    const res = await send(app, multipart({ query: 'query($f: File!) { caption(image: { upload: $f }) { text } }', variables: { f: null } }, { 0: value }, file));
    expect(res.status).toBe(400);
    expect(res.codes).toEqual(['BAD_REQUEST']);
  });

  it('OPERATION_RESOLUTION_FAILURE when no operation can be chosen', async () => {
    const res = await send(app, { method: 'POST', headers: JSON_HEADERS, body: JSON.stringify({ query: 'query A { __typename } query B { __typename }' }) });
    expect(res.status).toBe(400);
    expect(res.codes).toEqual(['OPERATION_RESOLUTION_FAILURE']);
  });

  it('GRAPHQL_VALIDATION_FAILED for a mutation or subscription root the schema lacks (it came with no code)', async () => {
    const res = await gql(app, 'mutation { x }');
    expect(res.status).toBe(400);
    expect(codes(res)).toEqual(['GRAPHQL_VALIDATION_FAILED']);
    expect(res.body.errors?.[0].message).toBe('this schema has no mutation operations');
  });
});

describe('bodies over the limit without a Content-Length (chunked)', () => {
  const app = createTestApp({ config: { limits: { bodyBytes: 8192, uploadBytes: 8192 } } });
  const chunked = (contentType: string, body: string, extra: Record<string, string> = {}): RequestInit =>
    ({ method: 'POST', headers: { 'content-type': contentType, ...extra }, body: new Blob([body]).stream(), duplex: 'half' }) as RequestInit;

  it('PAYLOAD_TOO_LARGE 413 for JSON (it was REQUEST_ENTITY_TOO_LARGE)', async () => {
    const res = await send(app, chunked('application/json', JSON.stringify({ query: CAPTION, variables: { i: { base64: 'x'.repeat(10_000) } } })));
    expect(res.status).toBe(413);
    expect(res.codes).toEqual(['PAYLOAD_TOO_LARGE']);
  });

  it('PAYLOAD_TOO_LARGE 413 for multipart (it was 400 BAD_REQUEST)', async () => {
    const body = `--XX\r\nContent-Disposition: form-data; name="operations"\r\n\r\n${'x'.repeat(10_000)}\r\n--XX--\r\n`;
    const res = await send(app, chunked('multipart/form-data; boundary=XX', body, { 'graphql-require-preflight': '1' }));
    expect(res.status).toBe(413);
    expect(res.codes).toEqual(['PAYLOAD_TOO_LARGE']);
  });
});

describe('cross-site simple requests are refused before anything runs', () => {
  const generator = createFakeGenerator();
  const app = createTestApp({ generator });
  const query = '{ caption(image: { base64: "iVBORw0KGgo=" }) { text } }';

  it.each([
    ['application/x-www-form-urlencoded', `query=${encodeURIComponent(query)}`],
    ['text/plain', JSON.stringify({ query })],
    ['', JSON.stringify({ query })],
  ])('UNSUPPORTED_MEDIA_TYPE 415 for a %s POST', async (contentType, body) => {
    const headers: Record<string, string> = contentType ? { 'content-type': contentType } : {};
    const res = await send(app, { method: 'POST', headers, body });
    expect(res.status).toBe(415);
    expect(res.codes).toEqual(['UNSUPPORTED_MEDIA_TYPE']);
    expect(generator.requests).toHaveLength(0);
  });

  it('PREFLIGHT_REQUIRED 400 for multipart without a GraphQL-Require-Preflight header; with it, the upload runs', async () => {
    const file = new Blob([new Uint8Array(await scenePng())], { type: 'image/png' });
    const operations = { query: 'query($f: File!) { caption(image: { upload: $f }) { text } }', variables: { f: null } };
    const refused = await send(app, multipart(operations, { 0: ['variables.f'] }, file, {}));
    expect(refused.status).toBe(400);
    expect(refused.codes).toEqual(['PREFLIGHT_REQUIRED']);
    expect(generator.requests).toHaveLength(0);
    const taken = await send(app, multipart(operations, { 0: ['variables.f'] }, file));
    expect(taken.body).toEqual({ data: { caption: { text: 'a large blue square' } } });
  });
});

describe('parser refusals carry a code', () => {
  it('BAD_REQUEST for a multipart request without its operations field (it came with no code)', async () => {
    const app = createTestApp();
    const form = new FormData();
    form.set('0', new Blob([new Uint8Array(4)]), 'a.png');
    const res = await send(app, { method: 'POST', headers: { 'graphql-require-preflight': '1' }, body: form });
    expect(res.status).toBe(400);
    expect(res.codes).toEqual(['BAD_REQUEST']);
  });
});
