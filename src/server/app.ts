// The Iris application: the yoga instance with its plugins, the model registry and the
// metrics, built from a config and a model loader. No sockets here: tests drive it with
// `yoga.fetch`, and listen.ts puts it on HTTP and WebSocket.
import { renderGraphiQL } from '@graphql-yoga/render-graphiql';
import { createYoga, useExecutionCancellation, type YogaServerInstance } from 'graphql-yoga';
import { createIrisSchema, type IrisContext, type IrisServices } from '../../schema/index.ts';
import type { IrisConfig } from '../config/config.ts';
import { createImageIntake } from './intake/intake.ts';
import { createModelRegistry, type LoadModel, type ModelRegistry } from './registry.ts';
import { useBodyLimit } from './plugins/body-limit.ts';
import { useCsrfPrevention } from './plugins/csrf.ts';
import { useRequestDeadline } from './plugins/deadline.ts';
import { createDrain, useDrain, type Drain } from './plugins/drain.ts';
import { createMaskError, type MaskError } from './plugins/errors.ts';
import { createMetrics, type IrisMetrics } from './plugins/metrics.ts';
import { nestingFor, useDocumentLimits } from './plugins/document-limits.ts';
import { useQueryLimits } from './plugins/query-limits.ts';
import { useModelReadiness } from './plugins/readiness.ts';

export interface IrisAppOptions {
  readonly config: IrisConfig;
  readonly load: LoadModel;
  /** Where unexpected (masked) errors are reported; console.error by default. */
  readonly logUnexpected?: (error: unknown) => void;
}

export type IrisYoga = YogaServerInstance<Record<string, unknown>, Partial<IrisContext>>;

export interface IrisApp {
  readonly config: IrisConfig;
  readonly yoga: IrisYoga;
  readonly registry: ModelRegistry;
  readonly metrics: IrisMetrics;
  /** The masking yoga applies, for errors a transport reports outside yoga (graphql-ws). */
  readonly maskError: MaskError;
  /** Graceful shutdown: listen.ts starts it on SIGTERM/SIGINT. */
  readonly drain: Drain;
}

export const GRAPHQL_PATH = '/graphql';

export function createIrisApp(options: IrisAppOptions): IrisApp {
  const { config } = options;
  // Resolved lazily: the metrics' scrape-time gauges and the registry's outcome reports
  // point at each other.
  let registryRef: ModelRegistry | undefined;
  const metrics = createMetrics({ models: () => registryRef?.list() ?? [] });
  const registry = createModelRegistry({
    specs: config.models.specs,
    load: options.load,
    onOutcome: metrics.record,
  });
  registryRef = registry;
  const services: IrisServices = {
    registry,
    intake: createImageIntake(config.images),
    promptChars: config.limits.promptChars,
  };
  const drain = createDrain();
  const maskError = createMaskError({ logUnexpected: options.logUnexpected ?? ((e) => console.error('iris: unexpected error', e)) });
  const yoga = createYoga<Record<string, unknown>, Partial<IrisContext>>({
    schema: createIrisSchema(),
    graphqlEndpoint: GRAPHQL_PATH,
    graphiql: config.server.graphiql ? { title: 'Iris' } : false,
    // The bundled GraphiQL: yoga's default page loads its scripts from a CDN, which
    // machines without internet access cannot reach.
    renderGraphiQL,
    landingPage: false,
    healthCheckEndpoint: '/health',
    // body-limit.ts applies the per-kind caps, from Content-Length before reading and by
    // counting chunked bodies; yoga's own cap answered with an undocumented code.
    maxRequestBodySize: false,
    context: () => ({ iris: services }),
    maskedErrors: { maskError },
    logging: false,
    plugins: [
      useDrain(drain, GRAPHQL_PATH),
      useCsrfPrevention(GRAPHQL_PATH),
      useBodyLimit(config.limits),
      metrics.plugin,
      useModelReadiness(registry, drain),
      useDocumentLimits({ tokens: config.limits.queryTokens, nesting: nestingFor(config.limits.queryDepth) }),
      useQueryLimits({ depth: config.limits.queryDepth, aliases: config.limits.queryAliases, cost: config.limits.queryCost }),
      useRequestDeadline({ timeoutMs: config.limits.requestTimeoutMs, shutdown: drain.track }),
      useExecutionCancellation(),
    ],
  });
  return { config, yoga, registry, metrics, maskError, drain };
}
