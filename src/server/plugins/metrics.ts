// GET /metrics in the Prometheus text format. Each server owns its own prom-client
// Registry (no process-wide default), so two servers in one test process do not mix.
// Generation outcomes are pushed in by the model registry; the engine gauges are read
// when scraped, so they are never stale.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Plugin } from 'graphql-yoga';
import type { GenerationOutcome, ModelStatus } from '../registry.ts';
import type { RoutingKeyCheck } from './routing-key.ts';
import type { MemoryRelease } from '../memory/release.ts';

export interface IrisMetrics {
  readonly registry: Registry;
  readonly plugin: Plugin;
  record(outcome: GenerationOutcome): void;
  /** A request's routing key (x-iris-image-key) as checked against its image. */
  recordRoutingKey(check: RoutingKeyCheck): void;
  /** A release of memory after a burst of request bodies (src/server/memory/release.ts). */
  recordMemoryRelease(release: MemoryRelease): void;
}

export interface MetricsOptions {
  readonly models: () => readonly ModelStatus[];
  readonly endpoint?: string;
}

/** What both caches report: the local tier's counts, and the shared tier's when there is one. */
interface TieredCacheReport {
  /** Identical requests in flight, asked before the local tier (the result cache only). */
  readonly inflight?: { readonly hits: number; readonly misses: number };
  readonly local: { readonly hits: number; readonly misses: number };
  readonly shared?: { readonly hits: number; readonly misses: number; readonly errors: number; readonly timeouts: number };
}

const LATENCY_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

function createModelGauges(registry: Registry, models: () => readonly ModelStatus[]): void {
  const gauge = (name: string, help: string, read: (m: ModelStatus) => number | undefined): void => {
    new Gauge({
      name,
      help,
      labelNames: ['model'],
      registers: [registry],
      collect() {
        this.reset();
        for (const m of models()) {
          const value = read(m);
          if (value !== undefined) this.set({ model: m.id }, value);
        }
      },
    });
  };
  gauge('iris_model_ready', '1 when the model is loaded and serving (a remote model: and its remote answers)', (m) => (m.state === 'ready' && m.healthy ? 1 : 0));
  // A remote model has no local engine: its engine gauges are absent (not 0), and this says what Iris knows.
  gauge('iris_remote_in_flight', 'Remote models (openai+http://…): generations sent to the remote and not finished yet', (m) => m.remote?.inFlight);
  gauge('iris_engine_queue_depth', 'Requests in the engine\'s line (image loading, waiting or preempted)', (m) => m.engine?.queueDepth);
  gauge('iris_engine_batch_size', 'Sequences in the running decode batch', (m) => m.engine?.batchSize);
  gauge('iris_engine_kv_used_tokens', 'Tokens held in the KV cache', (m) => m.engine?.kvUsedTokens);
  gauge('iris_engine_kv_capacity_tokens', 'KV cache budget in tokens', (m) => m.engine?.kvCapacityTokens);
  gauge('iris_prefix_cache_hits', 'Joint models: prefills whose image prefix came from the prefix cache (since start)', (m) => m.engine?.prefixCache?.hits);
  gauge('iris_prefix_cache_misses', 'Joint models: prefills that computed their image prefix (since start)', (m) => m.engine?.prefixCache?.misses);
  /** Lookups of a two-tier cache (local LRU, then shared Redis) by tier and result, read from each engine's report. */
  const tieredCacheCounter = (name: string, help: string, read: (m: ModelStatus) => TieredCacheReport | undefined): void => {
    new Counter({
      name,
      help,
      labelNames: ['model', 'tier', 'result'],
      registers: [registry],
      collect() {
        this.reset();
        for (const m of models()) {
          const report = read(m);
          if (!report) continue;
          if (report.inflight) {
            this.inc({ model: m.id, tier: 'inflight', result: 'hit' }, report.inflight.hits);
            this.inc({ model: m.id, tier: 'inflight', result: 'miss' }, report.inflight.misses);
          }
          this.inc({ model: m.id, tier: 'local', result: 'hit' }, report.local.hits);
          this.inc({ model: m.id, tier: 'local', result: 'miss' }, report.local.misses);
          if (!report.shared) continue;
          const { hits, misses, errors, timeouts } = report.shared;
          this.inc({ model: m.id, tier: 'redis', result: 'hit' }, hits);
          this.inc({ model: m.id, tier: 'redis', result: 'miss' }, misses);
          this.inc({ model: m.id, tier: 'redis', result: 'error' }, errors);
          this.inc({ model: m.id, tier: 'redis', result: 'timeout' }, timeouts);
        }
      },
    });
  };
  tieredCacheCounter(
    'iris_embedding_cache_total',
    'Image embedding lookups by tier (local LRU, shared Redis) and result (hit, miss; Redis also error and timeout, both served as misses)',
    (m) => m.engine?.embeddingCache,
  );
  tieredCacheCounter(
    'iris_result_cache_total',
    'Result cache lookups of deterministic requests, by tier (inflight: an identical request being answered, joined; then local LRU, then shared Redis) and result (hit, miss; Redis also error and timeout, both served as misses); non-deterministic requests are not looked up',
    (m) => m.engine?.resultCache,
  );
  gauge('iris_result_cache_bytes', 'Bytes of results held in the local result cache', (m) => m.engine?.resultCache?.local.bytes);
  gauge('iris_prefix_cache_tokens', 'Joint models: image-prefix tokens held in the prefix cache', (m) => m.engine?.prefixCache?.cachedTokens);
}

export function createMetrics(options: MetricsOptions): IrisMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  createModelGauges(registry, options.models);
  const registers = [registry];
  const generations = new Counter({ name: 'iris_generations_total', help: 'Generations by outcome (ok or error code)', labelNames: ['model', 'task', 'outcome'], registers });
  const seconds = new Histogram({ name: 'iris_generation_seconds', help: 'Time of successful generations, queueing included', labelNames: ['model', 'task'], buckets: LATENCY_BUCKETS, registers });
  const firstToken = new Histogram({ name: 'iris_time_to_first_token_seconds', help: 'From the request reaching its model to the first decoded piece, queueing included', labelNames: ['model', 'task'], buckets: LATENCY_BUCKETS, registers });
  const phases = new Histogram({ name: 'iris_generation_phase_seconds', help: 'Time per phase of successful generations', labelNames: ['model', 'phase'], buckets: LATENCY_BUCKETS, registers });
  const tokens = new Counter({ name: 'iris_tokens_total', help: 'Tokens processed', labelNames: ['model', 'kind'], registers });
  const images = new Counter({ name: 'iris_image_encodings_total', help: 'Images encoded or served from the embedding cache', labelNames: ['model', 'cached'], registers });
  const speculative = new Counter({ name: 'iris_speculative_tokens_total', help: 'Speculative decoding: tokens drafted and drafts accepted', labelNames: ['model', 'kind'], registers });
  const acceptance = { drafted: 0, accepted: 0 };
  new Gauge({
    name: 'iris_speculative_acceptance_rate',
    help: 'Accepted / drafted tokens since the server started (absent until something was drafted)',
    registers,
    collect() {
      if (acceptance.drafted > 0) this.set(acceptance.accepted / acceptance.drafted);
    },
  });
  const responses = new Counter({ name: 'iris_http_responses_total', help: 'HTTP responses by status', labelNames: ['status'], registers });
  const endpoint = options.endpoint ?? '/metrics';
  const routingKeys = new Counter({
    name: 'iris_routing_key_checks_total',
    help: 'Requests that read an image, by their x-iris-image-key: match, mismatch (ignored: costs locality, not correctness) or absent (none, or not 64 hex digits)',
    labelNames: ['result'],
    registers,
  });
  for (const result of ['match', 'mismatch', 'absent']) routingKeys.inc({ result }, 0);
  const recordRoutingKey = (check: RoutingKeyCheck): void => routingKeys.inc({ result: check.claimed === null ? 'absent' : check.mismatch ? 'mismatch' : 'match' });
  const memoryReleases = new Counter({
    name: 'iris_memory_releases_total',
    help: 'Releases of memory after a burst of request bodies, by what malloc_trim did: released (free pages went back to the system), nothing (there were none), unavailable (native/malloc-trim.node not built) or off (--release-memory false)',
    labelNames: ['trim'],
    registers,
  });
  for (const trim of ['released', 'nothing', 'unavailable', 'off']) memoryReleases.inc({ trim }, 0);
  const recordMemoryRelease = (release: MemoryRelease): void => memoryReleases.inc({ trim: release.trim });

  const record = (o: GenerationOutcome): void => {
    generations.inc({ model: o.model, task: o.task, outcome: o.outcome });
    if (!o.result) return;
    const { timings: t, usage: u } = o.result;
    seconds.observe({ model: o.model, task: o.task }, o.seconds);
    if (o.firstTokenSeconds !== undefined) firstToken.observe({ model: o.model, task: o.task }, o.firstTokenSeconds);
    phases.observe({ model: o.model, phase: 'queue' }, t.queueMs / 1000);
    // A remote engine encodes the image itself (imageCached null): Iris has no such phase to report.
    if (t.imageCached !== null) phases.observe({ model: o.model, phase: 'image_encode' }, t.imageEncodeMs / 1000);
    phases.observe({ model: o.model, phase: 'prefill' }, t.prefillMs / 1000);
    phases.observe({ model: o.model, phase: 'decode' }, t.decodeMs / 1000);
    tokens.inc({ model: o.model, kind: 'prompt' }, u.promptTokens);
    tokens.inc({ model: o.model, kind: 'image' }, u.imageTokens);
    tokens.inc({ model: o.model, kind: 'completion' }, u.completionTokens);
    if (t.imageCached !== null) images.inc({ model: o.model, cached: String(t.imageCached) });
    if (t.draftedTokens) {
      speculative.inc({ model: o.model, kind: 'drafted' }, t.draftedTokens);
      speculative.inc({ model: o.model, kind: 'accepted' }, t.acceptedTokens ?? 0);
      acceptance.drafted += t.draftedTokens;
      acceptance.accepted += t.acceptedTokens ?? 0;
    }
  };

  const plugin: Plugin = {
    async onRequest({ request, url, endResponse }) {
      if (url.pathname !== endpoint || request.method !== 'GET') return;
      endResponse(new Response(await registry.metrics(), { headers: { 'content-type': registry.contentType } }));
    },
    onResponse({ response }) {
      responses.inc({ status: String(response.status) });
    },
  };
  return { registry, plugin, record, recordRoutingKey, recordMemoryRelease };
}
