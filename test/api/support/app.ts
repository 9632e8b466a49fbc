// Building an app in-process, around a test-double Generator or real engines on the tiny
// fixture, and sending GraphQL to it through `yoga.fetch`.
import { mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createConfig, engineConfigOf, type ConfigInput } from '../../../src/config/config.ts';
import { TASKS, type Generator } from '../../../src/contract/types.ts';
import type { Engine } from '../../../src/engine/engine.ts';
import { createIrisApp, type IrisApp } from '../../../src/server/app.ts';
import { createEngineLoader, type EngineLoaderOptions } from '../../../src/server/load-models.ts';
import { FIXTURES } from '../../helpers.ts';
import { createFakeGenerator } from './fake-generator.ts';

export interface TestAppOptions {
  readonly config?: ConfigInput;
  readonly generator?: Generator;
  readonly logUnexpected?: (error: unknown) => void;
}

export function createTestApp(options: TestAppOptions = {}): IrisApp {
  const generator = options.generator ?? createFakeGenerator();
  const config = createConfig({
    ...options.config,
    models: { specs: [{ id: 'fake', dir: '/nonexistent' }], ...options.config?.models },
  });
  return createIrisApp({ config, load: async () => ({ generator, tasks: TASKS, attention: false }), logUnexpected: options.logUnexpected ?? (() => undefined) });
}

export interface EngineApp {
  readonly app: IrisApp;
  /** Cancels what is still running and frees the engines. */
  release(): Promise<void>;
}

/** The production path: the engine loader, with the config's engine slice, on a model folder (model id 'tiny'). */
export async function createEngineApp(input: ConfigInput = {}, dir: string = FIXTURES.encoderDecoder, loader: Pick<EngineLoaderOptions, 'sharedEmbeddings' | 'resultCacheBytes' | 'sharedResults'> = {}): Promise<EngineApp> {
  const config = createConfig({ ...input, models: { ...input.models, specs: [{ id: 'tiny', dir }] } });
  const engines: Engine[] = [];
  const load = createEngineLoader({ ...loader, engine: engineConfigOf(config), onEngine: (_, engine) => engines.push(engine) });
  const app = createIrisApp({ config, load, logUnexpected: () => undefined });
  await app.registry.loaded;
  return { app, release: async () => void (await Promise.all(engines.map((e) => e.release()))) };
}

/** tiny-random without its answer template, in a temporary folder (files linked, config.json rewritten). */
export async function captionOnlyFolder(): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'iris-caption-only-'));
  for (const name of await readdir(FIXTURES.encoderDecoder)) {
    if (name !== 'config.json') await symlink(join(FIXTURES.encoderDecoder, name), join(dir, name));
  }
  const config = JSON.parse(await readFile(join(FIXTURES.encoderDecoder, 'config.json'), 'utf8')) as { task_specific_params: Record<string, unknown> };
  delete config.task_specific_params.answer;
  await writeFile(join(dir, 'config.json'), JSON.stringify(config));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

export interface GraphqlResponse {
  readonly status: number;
  readonly body: {
    data?: Record<string, unknown> | null;
    errors?: Array<{ message: string; extensions?: { code?: string } }>;
  };
}

export async function gql(app: IrisApp, query: string, variables?: Record<string, unknown>): Promise<GraphqlResponse> {
  const response = await app.yoga.fetch('http://iris.test/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
    body: JSON.stringify({ query, variables }),
  });
  return { status: response.status, body: (await response.json()) as GraphqlResponse['body'] };
}

export function codes(response: GraphqlResponse): Array<string | undefined> {
  return (response.body.errors ?? []).map((e) => e.extensions?.code);
}
