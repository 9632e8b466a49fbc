// The service's configuration: one typed, validated, frozen object per concern. Values
// come from `createConfig(input)` (tests, embedding) or `loadConfig(argv, env)` in
// settings.ts (the command line); both end here, so every value is checked once.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_SPECULATIONS, type DefaultSpeculation } from '../contract/types.ts';
import { isRemoteDir, parseRemoteEndpoint } from './remote-model.ts';

/** The ONNX variants Iris can make (`iris quantize`) and load: fp32, q8 (`*_quantized.onnx`), fp16 (`*_fp16.onnx`). */
export type Dtype = 'fp32' | 'fp16' | 'q8';
export const DTYPES: readonly Dtype[] = ['fp32', 'fp16', 'q8'];

export type AccessLogFormat = 'off' | 'plain' | 'json';
export const ACCESS_LOG_FORMATS: readonly AccessLogFormat[] = ['off', 'plain', 'json'];

export interface ServerConfig {
  readonly host: string;
  readonly port: number;
  /** GraphiQL in a browser on GET /graphql. */
  readonly graphiql: boolean;
  /** Browser origins allowed to call Iris (CORS): ['*'] any (without credentials), [] none. */
  readonly corsOrigins: readonly string[];
  /** Let browsers send cookies and HTTP auth cross-origin; needs a list of origins, not '*'. */
  readonly corsCredentials: boolean;
  /** A line per HTTP request (method, operation, model, status, duration), plain text or JSON. */
  readonly accessLog: AccessLogFormat;
  /**
   * On SIGTERM/SIGINT, how long running generations and open streams may take to finish
   * before they are ended with SHUTTING_DOWN.
   */
  readonly drainTimeoutMs: number;
  /**
   * On SIGTERM/SIGINT, how long /ready answers 503 while new requests and connections are
   * still accepted and served, before the drain refuses new ones: the time a balancer
   * needs to see the 503 and stop sending (HAProxy: inter × fall; Kubernetes: the
   * readiness period × failureThreshold plus endpoint propagation). 0: refuse at once.
   */
  readonly drainDelayMs: number;
  /**
   * Streams (SSE, WebSocket, /v1): the least time between two events carrying text; the
   * pieces decoded meanwhile are merged into the next event (the first piece and the end
   * go out at once); past 8 streams open at once it grows in proportion (schema/stream.ts).
   * 0: an event whenever the reader is ready for one.
   */
  readonly streamIntervalMs: number;
  /**
   * After a burst of request bodies (a whole intake budget's worth) and a second of idle
   * budget: the image workers collect their garbage too and malloc's free pages go back to
   * the system (src/server/memory/release.ts). false: only the main thread collects.
   */
  readonly releaseMemory: boolean;
  /**
   * V8's old generation may grow to (1 + this/100) times what a full collection left
   * before the next one starts (src/server/memory/heap-growing.ts); 0: V8's own factor.
   */
  readonly heapGrowingPercent: number;
}

export interface AccessConfig {
  /** Bearer keys that may call GraphQL and /v1 (from --api-keys and --api-keys-file); empty: no key needed. */
  readonly apiKeys: readonly string[];
  /** The file the keys came from, one per line ('#' comments); undefined: none. */
  readonly apiKeysFile: string | undefined;
  /** A bearer key for GET /metrics alone; undefined: /metrics is open. */
  readonly metricsKey: string | undefined;
  /** Requests per minute per key (per client address without keys); 0: unlimited. */
  readonly requestsPerMinute: number;
  /** Generated tokens per minute per key (per client address without keys); 0: unlimited. */
  readonly tokensPerMinute: number;
}

export interface ModelSpec {
  readonly id: string;
  /** A model folder, or a remote OpenAI-compatible API: openai+http(s)://host/v1#model (remote-model.ts). */
  readonly dir: string;
  readonly dtype: Dtype;
}

/**
 * How each model's engine runs: the engine's slice of the config (see createEngineConfig),
 * under the same names as the settings, flags and config fields.
 */
export interface EngineSettings {
  /** Requests in line per model (image loading, waiting or preempted); beyond it new ones get OVERLOADED. */
  readonly maxQueued: number;
  /** Rows the engine decodes together per model; 1 turns batching off (one request at a time). */
  readonly maxBatchSize: number;
  /** The engine's KV budget in cached tokens per model; 0: a full batch of the model's longest rows. */
  readonly kvCacheTokens: number;
  /** Speculative decoding for requests that do not choose: auto, off, draft (needs `<model>/draft/`), ngram or medusa (needs `<model>/medusa/`). */
  readonly speculative: DefaultSpeculation;
  /** Above this many running rows a mode speculates only while its recent drafts are mostly accepted. */
  readonly speculativeMaxBatch: number;
  /** Tokens drafted per step. */
  readonly speculativeDrafts: number;
  /** Bytes of image embeddings kept per model, keyed by content hash. */
  readonly embeddingCacheBytes: number;
  /**
   * The decoder's onnxruntime intra-op threads. onnxruntime's default is a thread per core
   * that spin-waits between ops; but the decoder's ops are small, session.run blocks this
   * thread anyway, and the other cores are wanted by the image workers, sharp and HTTP.
   * One thread measured faster at 32 clients on 2 cores (in-process: 138 vs 99 req/s).
   */
  readonly threads: number;
  /**
   * Worker threads that decode, preprocess and encode images, so they run on another core
   * while this thread runs decoder steps; 0: in this thread. A batch of images is split
   * across them.
   */
  readonly imageWorkers: number;
  /**
   * How long an image load waits for company before the encoder runs, in ms. 0: loads
   * issued in the same event-loop turn still share a batch (under load, every request
   * read while a decoder step blocked the thread), and the encoder is barely cheaper per
   * image in batches, so a timer only added its 1 ms to every request.
   */
  readonly imageWindowMs: number;
  /** Joint-embedding models: image-prefix K/V kept for later questions about the same image, in tokens (0: off). */
  readonly prefixCacheTokens: number;
}

export interface ModelsConfig extends EngineSettings {
  /** The first one is the default when a request names no model. */
  readonly specs: readonly ModelSpec[];
  /** The variant of specs that name no dtype of their own (--dtype). */
  readonly dtype: Dtype;
}

export interface UrlFetchConfig {
  readonly timeoutMs: number;
  readonly maxRedirects: number;
  /**
   * Hosts, IP addresses or CIDR ranges that may be fetched even though they resolve to
   * private, loopback or link-local addresses (public addresses are always allowed).
   */
  readonly allow: readonly string[];
}

export interface ImagesConfig {
  /** Encoded bytes of one image, whatever way it came in. */
  readonly maxBytes: number;
  /** Width × height, checked from the header before anything is decoded. */
  readonly maxPixels: number;
  readonly url: UrlFetchConfig;
}

export interface LimitsConfig {
  /** Body of a JSON or GET request (base64 images travel here). */
  readonly bodyBytes: number;
  /** Body of a multipart upload request. */
  readonly uploadBytes: number;
  /**
   * Bytes of request bodies being read and decoded at once, across all requests (each
   * holds its size until its response is sent); the rest wait unread, or get OVERLOADED.
   */
  readonly intakeBytes: number;
  readonly requestTimeoutMs: number;
  /** Characters of a question or prompt; the core also checks tokens against the model. */
  readonly promptChars: number;
  readonly queryDepth: number;
  readonly queryAliases: number;
  /** Sum of field costs; a generation field costs what its @cost says in the SDL. */
  readonly queryCost: number;
  /** Lexical tokens of a document, counted while parsing (a string literal is one token). */
  readonly queryTokens: number;
}

/** The result cache of each model, and the second level shared by replicas (Redis, off without a URL). */
export interface CacheConfig {
  /**
   * Bytes of whole results of deterministic requests (greedy, or sampling with a seed)
   * kept per model; a repeated request is answered without running the model. With a
   * Redis URL, results are shared through Redis too. 0: results are never cached.
   */
  readonly resultCacheBytes: number;
  /** redis://[user:password@]host:port[/db] or rediss://…; undefined: no shared cache. */
  readonly redisUrl: string | undefined;
  /** How long a lookup may take before it counts as a miss (the request goes on to encode). */
  readonly redisTimeoutMs: number;
  /** Expiry of each stored embedding, in seconds. */
  readonly redisTtlSeconds: number;
  /** Embeddings larger than this (encoded) are not stored; Redis's own maxmemory bounds the total. */
  readonly redisMaxValueBytes: number;
}

export interface IrisConfig {
  readonly server: ServerConfig;
  readonly access: AccessConfig;
  readonly models: ModelsConfig;
  readonly images: ImagesConfig;
  readonly limits: LimitsConfig;
  readonly cache: CacheConfig;
}

/** What createConfig accepts: every field optional, list elements partial too. */
type Input<T> = {
  [K in keyof T]?: T[K] extends readonly (infer E)[] ? readonly (E extends object ? Input<E> : E)[] : T[K] extends object ? Input<T[K]> : T[K];
};
export type ConfigInput = Input<IrisConfig>;

const MB = 1024 * 1024;
// The shipped models, found relative to the package rather than the working directory:
// one of each family; the first is the default of requests that name none.
const SHIPPED_MODELS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../assets/models');

export const DEFAULTS: IrisConfig = {
  server: { host: '127.0.0.1', port: 4000, graphiql: true, corsOrigins: ['*'], corsCredentials: false, accessLog: 'plain', drainTimeoutMs: 30_000, drainDelayMs: 0, streamIntervalMs: 20, releaseMemory: true, heapGrowingPercent: 100 },
  access: { apiKeys: [], apiKeysFile: undefined, metricsKey: undefined, requestsPerMinute: 0, tokensPerMinute: 0 },
  models: {
    specs: [
      { id: 'shapes-base', dir: join(SHIPPED_MODELS_DIR, 'shapes-base'), dtype: 'fp32' },
      { id: 'shapes-joint', dir: join(SHIPPED_MODELS_DIR, 'shapes-joint'), dtype: 'fp32' },
    ],
    dtype: 'fp32',
    maxQueued: 64,
    maxBatchSize: 32,
    kvCacheTokens: 0,
    speculative: 'auto',
    speculativeMaxBatch: 1,
    speculativeDrafts: 4,
    embeddingCacheBytes: 64 * MB,
    threads: 1,
    imageWorkers: 1,
    imageWindowMs: 0,
    prefixCacheTokens: 4096,
  },
  images: {
    maxBytes: 8 * MB,
    maxPixels: 4096 * 4096,
    url: { timeoutMs: 5_000, maxRedirects: 3, allow: [] },
  },
  limits: {
    bodyBytes: 12 * MB,
    uploadBytes: 12 * MB,
    intakeBytes: 64 * MB,
    requestTimeoutMs: 60_000,
    promptChars: 2_000,
    queryDepth: 8,
    queryAliases: 10,
    queryCost: 400,
    queryTokens: 2_000,
  },
  cache: { resultCacheBytes: 16 * MB, redisUrl: undefined, redisTimeoutMs: 25, redisTtlSeconds: 86_400, redisMaxValueBytes: 16 * MB },
};

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

function int(name: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be an integer in [${min}, ${max}], got ${String(value)}`);
  }
  return value;
}

function text(name: string, value: unknown, pattern?: RegExp): string {
  if (typeof value !== 'string' || value.length === 0 || (pattern && !pattern.test(value))) {
    throw new ConfigError(`${name} must be a non-empty string${pattern ? ` matching ${pattern}` : ''}, got ${String(value)}`);
  }
  return value;
}

function flag(name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw new ConfigError(`${name} must be true or false, got ${String(value)}`);
  return value;
}

function createServerConfig(input: Input<ServerConfig> = {}): ServerConfig {
  const d = DEFAULTS.server;
  const origins = input.corsOrigins ?? d.corsOrigins;
  // 'none' (the flag cannot be set to an empty list): no CORS headers at all.
  const corsOrigins = (origins.length === 1 && origins[0] === 'none' ? [] : origins).map((o, i) => text(`server.corsOrigins[${i}]`, o, /^(\*|https?:\/\/[^/\s]+)$/));
  const corsCredentials = flag('server.corsCredentials', input.corsCredentials ?? d.corsCredentials);
  if (corsCredentials && (corsOrigins.includes('*') || corsOrigins.length === 0)) {
    throw new ConfigError('server.corsCredentials needs server.corsOrigins to list the origins (e.g. https://app.example.com), not * or none');
  }
  const accessLog = input.accessLog ?? d.accessLog;
  if (!ACCESS_LOG_FORMATS.includes(accessLog)) throw new ConfigError(`server.accessLog must be one of ${ACCESS_LOG_FORMATS.join(', ')}, got ${String(accessLog)}`);
  return Object.freeze({
    host: text('server.host', input.host ?? d.host),
    port: int('server.port', input.port ?? d.port, 0, 65_535),
    graphiql: flag('server.graphiql', input.graphiql ?? d.graphiql),
    corsOrigins: Object.freeze(corsOrigins.includes('*') ? ['*'] : corsOrigins),
    corsCredentials,
    accessLog,
    drainTimeoutMs: int('server.drainTimeoutMs', input.drainTimeoutMs ?? d.drainTimeoutMs, 0, 3_600_000),
    drainDelayMs: int('server.drainDelayMs', input.drainDelayMs ?? d.drainDelayMs, 0, 600_000),
    streamIntervalMs: int('server.streamIntervalMs', input.streamIntervalMs ?? d.streamIntervalMs, 0, 10_000),
    releaseMemory: flag('server.releaseMemory', input.releaseMemory ?? d.releaseMemory),
    heapGrowingPercent: int('server.heapGrowingPercent', input.heapGrowingPercent ?? d.heapGrowingPercent, 0, 1_000),
  });
}

const KEY = /^[\x21-\x7e]{8,}$/;

function checkKey(name: string, key: unknown): string {
  if (typeof key !== 'string' || !KEY.test(key)) throw new ConfigError(`${name} must be at least 8 printable characters without spaces`);
  return key;
}

/** The keys of a keys file: one per line; blank lines and lines starting with # are skipped. */
function readKeysFile(path: string): string[] {
  let body: string;
  try {
    body = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`access.apiKeysFile: cannot read ${path}: ${(error as Error).message}`);
  }
  const keys = body.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  return keys.map((k, i) => checkKey(`access.apiKeysFile (${path}) line ${i + 1}`, k));
}

function createAccessConfig(input: Input<AccessConfig> = {}): AccessConfig {
  const d = DEFAULTS.access;
  const apiKeysFile = input.apiKeysFile === undefined ? d.apiKeysFile : text('access.apiKeysFile', input.apiKeysFile);
  const keys = (input.apiKeys ?? d.apiKeys).map((k, i) => checkKey(`access.apiKeys[${i}]`, k));
  const metricsKey = input.metricsKey === undefined ? d.metricsKey : checkKey('access.metricsKey', input.metricsKey);
  return Object.freeze({
    apiKeys: Object.freeze([...new Set([...keys, ...(apiKeysFile ? readKeysFile(apiKeysFile) : [])])]),
    apiKeysFile,
    metricsKey,
    requestsPerMinute: int('access.requestsPerMinute', input.requestsPerMinute ?? d.requestsPerMinute, 0, 1_000_000),
    tokensPerMinute: int('access.tokensPerMinute', input.tokensPerMinute ?? d.tokensPerMinute, 0, 1_000_000_000),
  });
}

const MODEL_ID = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

function checkDtype(name: string, dtype: unknown): Dtype {
  if (!DTYPES.includes(dtype as Dtype)) throw new ConfigError(`${name} must be one of ${DTYPES.join(', ')}, got ${String(dtype)}`);
  return dtype as Dtype;
}

function checkSpeculative(name: string, mode: unknown): DefaultSpeculation {
  if (!DEFAULT_SPECULATIONS.includes(mode as DefaultSpeculation)) throw new ConfigError(`${name} must be one of ${DEFAULT_SPECULATIONS.join(', ')}, got ${String(mode)}`);
  return mode as DefaultSpeculation;
}

function createModelSpec(spec: Input<ModelSpec>, index: number, defaultDtype: Dtype): ModelSpec {
  const dtype = checkDtype(`models.specs[${index}].dtype`, spec.dtype ?? defaultDtype);
  const dir = text(`models.specs[${index}].dir`, spec.dir);
  if (isRemoteDir(dir)) {
    try {
      parseRemoteEndpoint(dir);
    } catch (error) {
      throw new ConfigError(`models.specs[${index}].dir: ${(error as Error).message}`);
    }
  }
  return Object.freeze({ id: text(`models.specs[${index}].id`, spec.id, MODEL_ID), dir, dtype });
}

function createEngineSettings(input: Input<EngineSettings>, prefix: string): EngineSettings {
  const d = DEFAULTS.models;
  return {
    maxQueued: int(`${prefix}maxQueued`, input.maxQueued ?? d.maxQueued, 0, 100_000),
    maxBatchSize: int(`${prefix}maxBatchSize`, input.maxBatchSize ?? d.maxBatchSize, 1, 1024),
    kvCacheTokens: int(`${prefix}kvCacheTokens`, input.kvCacheTokens ?? d.kvCacheTokens, 0),
    speculative: checkSpeculative(`${prefix}speculative`, input.speculative ?? d.speculative),
    speculativeMaxBatch: int(`${prefix}speculativeMaxBatch`, input.speculativeMaxBatch ?? d.speculativeMaxBatch, 0, 1024),
    speculativeDrafts: int(`${prefix}speculativeDrafts`, input.speculativeDrafts ?? d.speculativeDrafts, 1, 16),
    embeddingCacheBytes: int(`${prefix}embeddingCacheBytes`, input.embeddingCacheBytes ?? d.embeddingCacheBytes, 0),
    threads: int(`${prefix}threads`, input.threads ?? d.threads, 1, 256),
    imageWorkers: int(`${prefix}imageWorkers`, input.imageWorkers ?? d.imageWorkers, 0, 64),
    imageWindowMs: int(`${prefix}imageWindowMs`, input.imageWindowMs ?? d.imageWindowMs, 0, 60_000),
    prefixCacheTokens: int(`${prefix}prefixCacheTokens`, input.prefixCacheTokens ?? d.prefixCacheTokens, 0),
  };
}

function createModelsConfig(input: Input<ModelsConfig> = {}): ModelsConfig {
  const d = DEFAULTS.models;
  const dtype = checkDtype('models.dtype', input.dtype ?? d.dtype);
  // The default model takes --dtype too, so its own 'fp32' is dropped here.
  const specs = (input.specs ?? d.specs.map(({ id, dir }) => ({ id, dir }))).map((s, i) => createModelSpec(s, i, dtype));
  if (specs.length === 0) throw new ConfigError('models.specs must name at least one model');
  const ids = new Set(specs.map((s) => s.id));
  if (ids.size !== specs.length) throw new ConfigError('models.specs must not repeat a model id');
  return Object.freeze({ specs: Object.freeze(specs), dtype, ...createEngineSettings(input, 'models.') });
}

function createImagesConfig(input: Input<ImagesConfig> = {}): ImagesConfig {
  const d = DEFAULTS.images;
  const url = input.url ?? {};
  const allow = url.allow ?? d.url.allow;
  allow.forEach((entry, i) => {
    const [base, prefix, extra] = text(`images.url.allow[${i}]`, entry).split('/');
    const max = isIP(base) === 6 ? 128 : 32;
    if (prefix !== undefined && (isIP(base) === 0 || extra !== undefined || !/^\d+$/.test(prefix) || Number(prefix) > max)) {
      throw new ConfigError(`images.url.allow[${i}] must be a host name, an IP address or a CIDR range, got ${entry}`);
    }
  });
  return Object.freeze({
    maxBytes: int('images.maxBytes', input.maxBytes ?? d.maxBytes, 1),
    maxPixels: int('images.maxPixels', input.maxPixels ?? d.maxPixels, 1),
    url: Object.freeze({
      timeoutMs: int('images.url.timeoutMs', url.timeoutMs ?? d.url.timeoutMs, 1, 600_000),
      maxRedirects: int('images.url.maxRedirects', url.maxRedirects ?? d.url.maxRedirects, 0, 20),
      allow: Object.freeze([...allow]),
    }),
  });
}

function createLimitsConfig(input: Input<LimitsConfig> = {}): LimitsConfig {
  const d = DEFAULTS.limits;
  return Object.freeze({
    bodyBytes: int('limits.bodyBytes', input.bodyBytes ?? d.bodyBytes, 1024),
    uploadBytes: int('limits.uploadBytes', input.uploadBytes ?? d.uploadBytes, 1024),
    intakeBytes: int('limits.intakeBytes', input.intakeBytes ?? d.intakeBytes, 1024),
    requestTimeoutMs: int('limits.requestTimeoutMs', input.requestTimeoutMs ?? d.requestTimeoutMs, 1, 3_600_000),
    promptChars: int('limits.promptChars', input.promptChars ?? d.promptChars, 1, 1_000_000),
    queryDepth: int('limits.queryDepth', input.queryDepth ?? d.queryDepth, 1, 100),
    queryAliases: int('limits.queryAliases', input.queryAliases ?? d.queryAliases, 0, 1000),
    queryCost: int('limits.queryCost', input.queryCost ?? d.queryCost, 1),
    queryTokens: int('limits.queryTokens', input.queryTokens ?? d.queryTokens, 100, 1_000_000),
  });
}

function createCacheConfig(input: Input<CacheConfig> = {}): CacheConfig {
  const d = DEFAULTS.cache;
  const redisUrl = input.redisUrl === undefined ? d.redisUrl : text('cache.redisUrl', input.redisUrl, /^rediss?:\/\/[^\s]+$/);
  return Object.freeze({
    resultCacheBytes: int('cache.resultCacheBytes', input.resultCacheBytes ?? d.resultCacheBytes, 0),
    redisUrl,
    redisTimeoutMs: int('cache.redisTimeoutMs', input.redisTimeoutMs ?? d.redisTimeoutMs, 1, 60_000),
    redisTtlSeconds: int('cache.redisTtlSeconds', input.redisTtlSeconds ?? d.redisTtlSeconds, 1, 365 * 86_400),
    redisMaxValueBytes: int('cache.redisMaxValueBytes', input.redisMaxValueBytes ?? d.redisMaxValueBytes, 16, 512 * MB),
  });
}

/** What one model's engine is configured with: the engine settings and the image pixel limit. */
export interface EngineConfig extends EngineSettings {
  /** Width × height of one image (images.maxPixels), checked again where the engine decodes it. */
  readonly maxPixels: number;
}

export type EngineConfigInput = Input<EngineConfig>;

/**
 * The engine's slice, validated against the same table as createConfig and frozen; unset
 * fields take their DEFAULTS. Keys that are not engine settings are ignored, so callers
 * may pass a wider options object.
 */
export function createEngineConfig(input: EngineConfigInput = {}): EngineConfig {
  return Object.freeze({
    ...createEngineSettings(input, ''),
    maxPixels: int('maxPixels', input.maxPixels ?? DEFAULTS.images.maxPixels, 1),
  });
}

/** The engine slice of a validated config. */
export function engineConfigOf(config: IrisConfig): EngineConfig {
  const { specs: _specs, dtype: _dtype, ...settings } = config.models;
  return Object.freeze({ ...settings, maxPixels: config.images.maxPixels }); // validated by createConfig
}

/** Validates every value (throwing ConfigError that names it) and freezes the result. */
export function createConfig(input: ConfigInput = {}): IrisConfig {
  return Object.freeze({
    server: createServerConfig(input.server),
    access: createAccessConfig(input.access),
    models: createModelsConfig(input.models),
    images: createImagesConfig(input.images),
    limits: createLimitsConfig(input.limits),
    cache: createCacheConfig(input.cache),
  });
}
