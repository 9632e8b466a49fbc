// Building an app around a test-double Generator, and sending GraphQL to it in-process.
import { createConfig, type ConfigInput } from '../../../src/config/config.ts';
import { createIrisApp, type IrisApp } from '../../../src/server/app.ts';
import type { Generator } from '../../../src/contract/types.ts';
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
  return createIrisApp({ config, load: async () => generator, logUnexpected: options.logUnexpected ?? (() => undefined) });
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
