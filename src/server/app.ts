// The Iris application: the yoga instance with its plugins, the model registry and the
// metrics, built from a config and a model loader. No sockets here: tests drive it with
// `yoga.fetch`, and listen.ts puts it on HTTP and WebSocket.
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
import { usePlayground } from './playground/serve.ts';
import { nestingFor, useDocumentLimits } from './plugins/document-limits.ts';
import { useQueryLimits } from './plugins/query-limits.ts';
import { useModelReadiness } from './plugins/readiness.ts';
import { OPENAI_PREFIX, useOpenAIRoutes } from './openai/routes.ts';
import { createAccessControl, type AccessControl, type Client } from './access.ts';
import { useAccessControl } from './plugins/auth.ts';
import { createRequestNotes, useAccessLog } from './plugins/access-log.ts';
import { corsOptionsOf } from './plugins/cors.ts';
import { GRAPHIQL_DEFAULT_QUERY } from './graphiql.ts';
import { useRoutingKey } from './plugins/routing-key.ts';

export interface IrisAppOptions {
  readonly config: IrisConfig;
  readonly load: LoadModel;
  /** Where unexpected (masked) errors are reported; console.error by default. */
  readonly logUnexpected?: (error: unknown) => void;
  /** Where access log lines go (config.server.accessLog picks the format); none: no access log. */
  readonly logAccess?: (line: string) => void;
}

export type IrisYoga = YogaServerInstance<Record<string, unknown>, Partial<IrisContext>>;

export interface IrisApp {
  readonly config: IrisConfig;
  readonly yoga: IrisYoga;
  readonly registry: ModelRegistry;
  readonly metrics: IrisMetrics;
  readonly access: AccessControl;
  /** The masking yoga applies, for errors a transport reports outside yoga (graphql-ws). */
  readonly maskError: MaskError;
  /** Graceful shutdown: listen.ts starts it on SIGTERM/SIGINT. */
  readonly drain: Drain;
}

/** What the WebSocket transport puts in an operation's initial context. */
export interface TransportContext {
  readonly request?: Request;
  readonly irisClient?: Client;
}

export const GRAPHQL_PATH = '/graphql';
export const METRICS_PATH = '/metrics';

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
  const access = createAccessControl(config.access);
  const services: IrisServices = {
    registry,
    intake: createImageIntake(config.images),
    promptChars: config.limits.promptChars,
    streamIntervalMs: config.server.streamIntervalMs,
  };
  const notes = createRequestNotes();
  const { accessLog } = config.server;
  const accessLogPlugins =
    accessLog !== 'off' && options.logAccess
      ? [useAccessLog({ format: accessLog, write: options.logAccess, notes, defaultModel: registry.defaultModel, clientOf: (r) => access.clientOf(r) })]
      : [];
  const logUnexpected = options.logUnexpected ?? ((e: unknown) => console.error('iris: unexpected error', e));
  const drain = createDrain();
  const maskError = createMaskError({ logUnexpected });
  const yoga = createYoga<Record<string, unknown>, Partial<IrisContext>>({
    schema: createIrisSchema(),
    graphqlEndpoint: GRAPHQL_PATH,
    graphiql: config.server.graphiql ? { title: 'Iris', defaultQuery: GRAPHIQL_DEFAULT_QUERY } : false,
    // The bundled GraphiQL: yoga's default page loads its scripts from a CDN, which
    // machines without internet access cannot reach. Imported on the first page view: its
    // 9 MB of script held 29 MB of strings in the heap of every server (half the live
    // heap under load, marked by every full collection) whether or not anyone opened it.
    renderGraphiQL: async (options) => (await import('@graphql-yoga/render-graphiql')).renderGraphiQL(options),
    landingPage: false,
    healthCheckEndpoint: '/health',
    // body-limit.ts applies the per-kind caps, from Content-Length before reading and by
    // counting chunked bodies; yoga's own cap answered with an undocumented code.
    maxRequestBodySize: false,
    context: (initial: TransportContext) => ({ iris: access.servicesFor(services, initial.irisClient ?? access.clientOf(initial.request)) }),
    cors: corsOptionsOf(config.server),
    maskedErrors: { maskError },
    logging: false,
    plugins: [
      ...accessLogPlugins,
      useDrain(drain, GRAPHQL_PATH, OPENAI_PREFIX),
      useCsrfPrevention(GRAPHQL_PATH),
      useAccessControl({ access, graphqlPath: GRAPHQL_PATH, metricsPath: METRICS_PATH, openaiPrefix: OPENAI_PREFIX }),
      // Before the body limit: /v1 answers its own refusals in OpenAI's error shape.
      useOpenAIRoutes({ services: (request) => access.servicesFor(services, access.clientOf(request)), timeoutMs: config.limits.requestTimeoutMs, bodyBytes: config.limits.bodyBytes, logUnexpected, notes }),
      useBodyLimit(config.limits),
      metrics.plugin,
      useModelReadiness(registry, drain),
      useDocumentLimits({ tokens: config.limits.queryTokens, nesting: nestingFor(config.limits.queryDepth) }),
      usePlayground(),
      useQueryLimits({ depth: config.limits.queryDepth, aliases: config.limits.queryAliases, cost: config.limits.queryCost }),
      useRequestDeadline({ timeoutMs: config.limits.requestTimeoutMs, drain }),
      useExecutionCancellation(),
      useRoutingKey({ onCheck: metrics.recordRoutingKey }),
    ],
  });
  return { config, yoga, registry, metrics, access, maskError, drain };
}
