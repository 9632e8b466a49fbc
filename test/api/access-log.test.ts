// The access log: a line per request with method, path, operation, model, status and
// duration, plain or JSON by --access-log, silent for probes and when off.
import { describe, expect, it } from 'vitest';
import { createConfig, ConfigError, type ConfigInput } from '../../src/config/config.ts';
import { loadConfig } from '../../src/config/settings.ts';
import { TASKS } from '../../src/contract/types.ts';
import { createIrisApp, type IrisApp } from '../../src/server/app.ts';
import { createFakeGenerator } from './support/fake-generator.ts';

const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC';

function logged(config: ConfigInput): { app: IrisApp; lines: string[] } {
  const lines: string[] = [];
  const app = createIrisApp({
    config: createConfig({ ...config, models: { specs: [{ id: 'fake', dir: '/x' }, { id: 'other', dir: '/y' }] } }),
    load: async () => ({ generator: createFakeGenerator(), tasks: TASKS }),
    logUnexpected: () => undefined,
    logAccess: (line) => lines.push(line),
  });
  return { app, lines };
}

const post = (app: IrisApp, path: string, body: unknown, headers: Record<string, string> = {}) =>
  app.yoga.fetch(`http://iris.test${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

describe('access log', () => {
  it('plain: one line per request with operation, model, status and duration; probes are quiet', async () => {
    const { app, lines } = logged({ server: { accessLog: 'plain' } });
    await post(app, '/graphql', { query: 'query Describe($m: String) { caption(image: { base64: "' + PNG + '" }, model: $m) { text } }', variables: { m: 'other' } });
    await post(app, '/graphql', { query: '{ caption(image: { base64: "' + PNG + '" }, model: "nope") { text } }' });
    await post(app, '/v1/chat/completions', { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } }] }] });
    await app.yoga.fetch('http://iris.test/health');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z POST \/graphql Describe model=other 200 [\d.]+ms client=ip-unknown$/);
    expect(lines[1]).toMatch(/ POST \/graphql caption model=nope 200 [\d.]+ms client=ip-unknown errors=MODEL_NOT_FOUND$/);
    expect(lines[2]).toMatch(/ POST \/v1\/chat\/completions chat\.completions model=fake 200 [\d.]+ms/);
  });

  it('json: the same fields as one JSON object per line, refusals included', async () => {
    const { app, lines } = logged({ server: { accessLog: 'json' }, access: { apiKeys: ['sk-log-test-1'] } });
    await post(app, '/graphql', { query: '{ models { id } }' }, { authorization: 'Bearer sk-log-test-1' });
    await post(app, '/graphql', { query: '{ models { id } }' });
    const [ok, refused] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(ok).toMatchObject({ method: 'POST', path: '/graphql', operation: 'models', model: null, status: 200, client: 'key-1' });
    expect(typeof ok.ms).toBe('number');
    expect(refused).toMatchObject({ status: 401, client: null, operation: null });
  });

  it('writes nothing when off, and refuses an unknown format naming the setting', async () => {
    const { app, lines } = logged({ server: { accessLog: 'off' } });
    await post(app, '/graphql', { query: '{ models { id } }' });
    expect(lines).toEqual([]);
    expect(() => loadConfig(['--access-log', 'xml'], {})).toThrow(ConfigError);
    expect(() => loadConfig(['--access-log', 'xml'], {})).toThrow(/accessLog must be one of off, plain, json/);
  });
});
