import { describe, expect, it } from 'vitest';
import { ConfigError, createConfig, createEngineConfig, DEFAULTS, engineConfigOf } from '../../src/config/config.ts';
import { loadConfig, SETTINGS } from '../../src/config/settings.ts';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../helpers.ts';

describe('config', () => {
  it('defaults to the two shipped models (shapes-base first) on 127.0.0.1:4000, frozen', () => {
    const config = loadConfig([], {});
    expect(config.server).toMatchObject({ host: '127.0.0.1', port: 4000 });
    expect(config.models.specs.map((s) => s.id)).toEqual(['shapes-base', 'shapes-joint']);
    expect(config.models.specs[0].dir).toMatch(/assets\/models\/shapes-base$/);
    expect(config.models.specs[1].dir).toMatch(/assets\/models\/shapes-joint$/);
    expect(Object.isFrozen(config.limits)).toBe(true);
    expect(Object.isFrozen(config.images.url.allow)).toBe(true);
  });

  it('reads the environment, and flags over it', () => {
    const config = loadConfig(
      ['--port', '4001', '--model', 'tiny=assets/models/tiny-random', '--model', 'gpt2=assets/models/tiny-random-gpt2:fp16', '--url-allow', '127.0.0.1,10.0.0.0/8'],
      { PORT: '5000', HOST: '0.0.0.0', IRIS_MODELS: 'ignored=x', IRIS_REQUEST_TIMEOUT_MS: '1500' },
    );
    expect(config.server).toMatchObject({ host: '0.0.0.0', port: 4001 });
    expect(config.models.specs).toEqual([
      { id: 'tiny', dir: 'assets/models/tiny-random', dtype: 'fp32' },
      { id: 'gpt2', dir: 'assets/models/tiny-random-gpt2', dtype: 'fp16' },
    ]);
    expect(config.images.url.allow).toEqual(['127.0.0.1', '10.0.0.0/8']);
    expect(config.limits.requestTimeoutMs).toBe(1500);
    expect(loadConfig([], { IRIS_MODELS: 'a=dir-a, b=dir-b' }).models.specs.map((s) => s.id)).toEqual(['a', 'b']);
  });

  it.each([
    [['--port', '70000'], /^--port \(PORT\): server.port must be an integer in \[0, 65535\]/],
    [['--max-batch-size', '0'], /^--max-batch-size \(IRIS_MAX_BATCH_SIZE\): models.maxBatchSize must be an integer in \[1, 1024\], got 0/],
    [['--port', 'abc'], /--port \/ PORT must be a whole number/],
    [['--nope', '1'], /Unknown option '--nope'/],
    [['--model', 'no-equals-sign'], /id=dir\[:dtype\]/],
    [['--model', 'a=x:fp8'], /dtype must be one of/],
    [['--model', 'a=x:q4'], /dtype must be one of fp32, fp16, q8/], // nothing makes q4 files
    [['--model', 'a=x', '--model', 'a=y'], /must not repeat a model id/],
    [['--url-allow', '10.0.0.0/99'], /images.url.allow\[0\] must be a host name, an IP address or a CIDR range/],
    [['--query-max-depth', '0'], /limits.queryDepth must be an integer in \[1, 100\]/],
  ])('refuses %j', (argv, message) => {
    expect(() => loadConfig(argv, {})).toThrow(ConfigError);
    expect(() => loadConfig(argv, {})).toThrow(message);
  });

  it('gives the engine its slice under the settings\' own names, defaults from DEFAULTS, validated once', () => {
    const config = loadConfig(['--max-queued', '3', '--speculative', 'ngram', '--speculative-drafts', '2', '--image-workers', '0', '--image-max-pixels', '4096'], {});
    const engine = engineConfigOf(config);
    expect(engine).toMatchObject({ maxQueued: 3, speculative: 'ngram', speculativeDrafts: 2, imageWorkers: 0, maxPixels: 4096, maxBatchSize: DEFAULTS.models.maxBatchSize });
    expect(Object.isFrozen(engine)).toBe(true);
    expect(createEngineConfig({ maxQueued: 3, speculative: 'ngram', speculativeDrafts: 2, imageWorkers: 0, maxPixels: 4096 })).toEqual(engine);
    const { specs: _specs, dtype: _dtype, ...settings } = DEFAULTS.models;
    expect(createEngineConfig()).toEqual({ ...settings, maxPixels: DEFAULTS.images.maxPixels });
    expect(() => createEngineConfig({ maxQueued: -1 })).toThrow(/maxQueued must be an integer/);
    expect(() => loadConfig(['--max-in-flight', '2'], {})).toThrow(ConfigError);
  });

  it('takes typed partial input', () => {
    const config = createConfig({ limits: { queryCost: 1000 } });
    expect(config.limits.queryCost).toBe(1000);
    expect(config.limits.queryDepth).toBe(DEFAULTS.limits.queryDepth);
  });
});

describe('README settings table', () => {
  it('has a row per setting with its flag, environment variable and default, in the table\'s order', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const rows = [...readme.matchAll(/^\| `--([a-z0-9-]+)` \| `([A-Z0-9_]+)` \| ([^|]*) \|/gm)].map((m) => ({ flag: m[1], env: m[2], default: m[3].trim() }));
    const shown = (value: unknown): string => (value === undefined || (Array.isArray(value) && value.length === 0) ? '(none)' : Array.isArray(value) ? value.join(',') : String(value));
    const expected = SETTINGS.map((s) => ({ flag: s.flag, env: s.env, default: shown(s.path.reduce<unknown>((node, key) => (node as Record<string, unknown>)[key], DEFAULTS)) }));
    expect(rows).toEqual(expected);
  });
});
