// Reads configuration from the environment and command-line flags (flags win). Every
// setting has one flag and one environment variable, listed in SETTINGS, so the README
// table and the parser cannot drift apart.
import { parseArgs } from 'node:util';
import { ConfigError, createConfig, type ConfigInput, type Dtype, type IrisConfig, type ModelSpec } from './config.ts';

type Kind = 'int' | 'string' | 'bool' | 'list';

interface Setting {
  readonly flag: string;
  readonly env: string;
  readonly kind: Kind;
  /** Where the value goes in ConfigInput, e.g. ['limits', 'bodyBytes']. */
  readonly path: readonly [string, string] | readonly [string, string, string];
  readonly help: string;
}

export const SETTINGS: readonly Setting[] = [
  { flag: 'host', env: 'HOST', kind: 'string', path: ['server', 'host'], help: 'address to listen on' },
  { flag: 'port', env: 'PORT', kind: 'int', path: ['server', 'port'], help: 'port to listen on (0: any free port)' },
  { flag: 'graphiql', env: 'IRIS_GRAPHIQL', kind: 'bool', path: ['server', 'graphiql'], help: 'serve GraphiQL on GET /graphql' },
  { flag: 'cors-origins', env: 'IRIS_CORS_ORIGINS', kind: 'list', path: ['server', 'corsOrigins'], help: 'browser origins allowed by CORS, comma-separated: * (any, without credentials) or none' },
  { flag: 'cors-credentials', env: 'IRIS_CORS_CREDENTIALS', kind: 'bool', path: ['server', 'corsCredentials'], help: 'allow cookies and HTTP auth cross-origin (needs --cors-origins to list origins)' },
  { flag: 'access-log', env: 'IRIS_ACCESS_LOG', kind: 'string', path: ['server', 'accessLog'], help: 'a line per request on stdout: plain, json or off' },
  { flag: 'api-keys', env: 'IRIS_API_KEYS', kind: 'list', path: ['access', 'apiKeys'], help: 'bearer keys for GraphQL, WebSocket and /v1, comma-separated (prefer the env or a file: flags show in ps)' },
  { flag: 'api-keys-file', env: 'IRIS_API_KEYS_FILE', kind: 'string', path: ['access', 'apiKeysFile'], help: 'a file of bearer keys, one per line (# comments)' },
  { flag: 'metrics-key', env: 'IRIS_METRICS_KEY', kind: 'string', path: ['access', 'metricsKey'], help: 'bearer key for GET /metrics (unset: /metrics is open)' },
  { flag: 'rate-limit-rpm', env: 'IRIS_RATE_LIMIT_RPM', kind: 'int', path: ['access', 'requestsPerMinute'], help: 'requests per minute per key (per client address without keys); 0: unlimited' },
  { flag: 'rate-limit-tpm', env: 'IRIS_RATE_LIMIT_TPM', kind: 'int', path: ['access', 'tokensPerMinute'], help: 'generated tokens per minute per key (per client address without keys); 0: unlimited' },
  { flag: 'stream-interval-ms', env: 'IRIS_STREAM_INTERVAL_MS', kind: 'int', path: ['server', 'streamIntervalMs'], help: 'least time between two streamed events carrying text, growing past 8 open streams; pieces decoded meanwhile are merged (0: an event per piece while the reader keeps up)' },
  { flag: 'drain-timeout-ms', env: 'IRIS_DRAIN_TIMEOUT_MS', kind: 'int', path: ['server', 'drainTimeoutMs'], help: 'on SIGTERM/SIGINT, time for running generations and streams to finish before they end with SHUTTING_DOWN' },
  { flag: 'drain-delay-ms', env: 'IRIS_DRAIN_DELAY_MS', kind: 'int', path: ['server', 'drainDelayMs'], help: 'on SIGTERM/SIGINT, time /ready answers 503 while new requests are still served, so the balancer stops sending before the drain refuses them (0: refuse at once)' },
  { flag: 'dtype', env: 'IRIS_DTYPE', kind: 'string', path: ['models', 'dtype'], help: 'ONNX variant of models whose --model names none: fp32, q8 (*_quantized.onnx), fp16 (*_fp16.onnx)' },
  { flag: 'max-queued', env: 'IRIS_MAX_QUEUED', kind: 'int', path: ['models', 'maxQueued'], help: 'requests in line per model (image loading, waiting, preempted) before OVERLOADED' },
  { flag: 'max-batch-size', env: 'IRIS_MAX_BATCH_SIZE', kind: 'int', path: ['models', 'maxBatchSize'], help: 'rows decoded together per model (1: batching off)' },
  { flag: 'kv-cache-tokens', env: 'IRIS_KV_CACHE_TOKENS', kind: 'int', path: ['models', 'kvCacheTokens'], help: 'KV budget in cached tokens per model (0: a full batch of longest rows)' },
  { flag: 'speculative', env: 'IRIS_SPECULATIVE', kind: 'string', path: ['models', 'speculative'], help: 'speculative decoding by default: auto (medusa for greedy requests on a model with heads, else off), off, draft (the model\'s draft/ folder), ngram or medusa (the model\'s medusa/ heads)' },
  { flag: 'speculative-max-batch', env: 'IRIS_SPECULATIVE_MAX_BATCH', kind: 'int', path: ['models', 'speculativeMaxBatch'], help: 'running rows above which a mode speculates only while its recent drafts are ≥ 80 % accepted (60 % for medusa)' },
  { flag: 'speculative-drafts', env: 'IRIS_SPECULATIVE_DRAFTS', kind: 'int', path: ['models', 'speculativeDrafts'], help: 'tokens drafted per step, 1 to 16' },
  { flag: 'embedding-cache-bytes', env: 'IRIS_EMBEDDING_CACHE_BYTES', kind: 'int', path: ['models', 'embeddingCacheBytes'], help: 'bytes of image embeddings cached per model' },
  { flag: 'threads', env: 'IRIS_THREADS', kind: 'int', path: ['models', 'threads'], help: 'onnxruntime intra-op threads of each model\'s decoder' },
  { flag: 'image-workers', env: 'IRIS_IMAGE_WORKERS', kind: 'int', path: ['models', 'imageWorkers'], help: 'worker threads encoding images per model (0: in the decoder\'s thread; a lone image arriving while the decoder is idle is encoded there anyway)' },
  { flag: 'prefix-cache-tokens', env: 'IRIS_PREFIX_CACHE_TOKENS', kind: 'int', path: ['models', 'prefixCacheTokens'], help: 'joint (LLaVA-layout) models: image-prefix K/V kept for later questions about the same image, in tokens (0: off)' },
  { flag: 'image-window-ms', env: 'IRIS_IMAGE_WINDOW_MS', kind: 'int', path: ['models', 'imageWindowMs'], help: 'time an image load waits for others to encode with (0: the same event-loop turn)' },
  { flag: 'image-max-bytes', env: 'IRIS_IMAGE_MAX_BYTES', kind: 'int', path: ['images', 'maxBytes'], help: 'encoded bytes of one image' },
  { flag: 'image-max-pixels', env: 'IRIS_IMAGE_MAX_PIXELS', kind: 'int', path: ['images', 'maxPixels'], help: 'width × height of one image' },
  { flag: 'url-timeout-ms', env: 'IRIS_URL_TIMEOUT_MS', kind: 'int', path: ['images', 'url', 'timeoutMs'], help: 'time to fetch an image URL' },
  { flag: 'url-max-redirects', env: 'IRIS_URL_MAX_REDIRECTS', kind: 'int', path: ['images', 'url', 'maxRedirects'], help: 'redirects followed for an image URL' },
  { flag: 'url-allow', env: 'IRIS_URL_ALLOW', kind: 'list', path: ['images', 'url', 'allow'], help: 'private hosts/IPs/CIDRs image URLs may reach (comma-separated)' },
  { flag: 'body-limit', env: 'IRIS_BODY_LIMIT_BYTES', kind: 'int', path: ['limits', 'bodyBytes'], help: 'bytes of a JSON request body' },
  { flag: 'upload-limit', env: 'IRIS_UPLOAD_LIMIT_BYTES', kind: 'int', path: ['limits', 'uploadBytes'], help: 'bytes of a multipart request body' },
  { flag: 'intake-budget-bytes', env: 'IRIS_INTAKE_BUDGET_BYTES', kind: 'int', path: ['limits', 'intakeBytes'], help: 'bytes of request bodies read and decoded at once, across all requests; the rest wait unread or get OVERLOADED' },
  { flag: 'release-memory', env: 'IRIS_RELEASE_MEMORY', kind: 'bool', path: ['server', 'releaseMemory'], help: 'after a burst of request bodies (an intake budget\'s worth) and 1 s idle, the image workers collect their garbage too and malloc\'s free pages go back to the system (false: only the main thread collects)' },
  { flag: 'heap-growing-percent', env: 'IRIS_HEAP_GROWING_PERCENT', kind: 'int', path: ['server', 'heapGrowingPercent'], help: 'V8\'s old generation may grow to 1 + this/100 times what a full garbage collection left before the next one starts (0: V8\'s own factor, which under steady load let collections run back to back)' },
  { flag: 'request-timeout-ms', env: 'IRIS_REQUEST_TIMEOUT_MS', kind: 'int', path: ['limits', 'requestTimeoutMs'], help: 'time for one generation, queueing included' },
  { flag: 'prompt-max-chars', env: 'IRIS_PROMPT_MAX_CHARS', kind: 'int', path: ['limits', 'promptChars'], help: 'characters of a question or prompt' },
  { flag: 'query-max-depth', env: 'IRIS_QUERY_MAX_DEPTH', kind: 'int', path: ['limits', 'queryDepth'], help: 'selection depth of a document' },
  { flag: 'query-max-aliases', env: 'IRIS_QUERY_MAX_ALIASES', kind: 'int', path: ['limits', 'queryAliases'], help: 'aliases in a document' },
  { flag: 'query-max-cost', env: 'IRIS_QUERY_MAX_COST', kind: 'int', path: ['limits', 'queryCost'], help: 'summed field cost of a document' },
  { flag: 'query-max-tokens', env: 'IRIS_QUERY_MAX_TOKENS', kind: 'int', path: ['limits', 'queryTokens'], help: 'lexical tokens of a document, counted while parsing' },
  { flag: 'result-cache-bytes', env: 'IRIS_RESULT_CACHE_BYTES', kind: 'int', path: ['cache', 'resultCacheBytes'], help: 'bytes of whole results of deterministic requests (greedy, or sampling with a seed) kept per model, answered again without running it (0: results never cached, Redis included)' },
  { flag: 'redis-url', env: 'IRIS_REDIS_URL', kind: 'string', path: ['cache', 'redisUrl'], help: 'Redis shared by replicas as a second-level cache of image embeddings and results, e.g. redis://127.0.0.1:6379 (unset: off)' },
  { flag: 'redis-timeout-ms', env: 'IRIS_REDIS_TIMEOUT_MS', kind: 'int', path: ['cache', 'redisTimeoutMs'], help: 'time a Redis lookup may take before it counts as a miss' },
  { flag: 'redis-ttl-s', env: 'IRIS_REDIS_TTL_S', kind: 'int', path: ['cache', 'redisTtlSeconds'], help: 'expiry of each embedding or result stored in Redis, in seconds' },
  { flag: 'redis-max-value-bytes', env: 'IRIS_REDIS_MAX_VALUE_BYTES', kind: 'int', path: ['cache', 'redisMaxValueBytes'], help: 'embeddings or results larger than this are not stored in Redis (its maxmemory bounds the total)' },
];

/** `--model id=dir[:dtype]` or `--model id=openai+http://host/v1#name`, repeatable; IRIS_MODELS takes the same, comma-separated. */
export const MODEL_FLAG = { flag: 'model', env: 'IRIS_MODELS' } as const;

function convert(setting: Setting, raw: string): number | string | boolean | string[] {
  const name = `--${setting.flag} / ${setting.env}`;
  switch (setting.kind) {
    case 'int': {
      if (!/^\d+$/.test(raw.trim())) throw new ConfigError(`${name} must be a whole number, got "${raw}"`);
      return Number(raw);
    }
    case 'bool': {
      if (!/^(true|false|1|0)$/.test(raw)) throw new ConfigError(`${name} must be true or false, got "${raw}"`);
      return raw === 'true' || raw === '1';
    }
    case 'list':
      return raw.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
    case 'string':
      return raw;
  }
}

export function parseModelSpec(raw: string): Partial<ModelSpec> {
  const eq = raw.indexOf('=');
  if (eq <= 0) throw new ConfigError(`--model / IRIS_MODELS entries look like id=dir[:dtype], got "${raw}"`);
  const id = raw.slice(0, eq);
  const rest = raw.slice(eq + 1);
  if (rest.startsWith('openai+')) return { id, dir: rest }; // a remote model: its URL has colons of its own
  const colon = rest.lastIndexOf(':');
  if (colon > 0 && /^[a-z0-9]+$/.test(rest.slice(colon + 1))) {
    return { id, dir: rest.slice(0, colon), dtype: rest.slice(colon + 1) as Dtype };
  }
  return { id, dir: rest };
}

function assign(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    node[key] ??= {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]] = value;
}

function readFlags(argv: readonly string[]): { values: Map<string, string>; models: string[] } {
  const options: Record<string, { type: 'string'; multiple?: boolean }> = { [MODEL_FLAG.flag]: { type: 'string', multiple: true } };
  for (const s of SETTINGS) options[s.flag] = { type: 'string' };
  try {
    const { values } = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false });
    const flat = new Map<string, string>();
    for (const s of SETTINGS) {
      const v = values[s.flag];
      if (typeof v === 'string') flat.set(s.flag, v);
    }
    const models = values[MODEL_FLAG.flag];
    return { values: flat, models: Array.isArray(models) ? models : [] };
  } catch (error) {
    throw new ConfigError(`${(error as Error).message}. Flags: --model id=dir[:dtype], ${SETTINGS.map((s) => `--${s.flag}`).join(', ')}`);
  }
}

/** Environment first, then flags over it; unknown flags are an error, not ignored. */
export function loadConfig(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): IrisConfig {
  const flags = readFlags(argv);
  const input: Record<string, unknown> = {};
  for (const s of SETTINGS) {
    const raw = flags.values.get(s.flag) ?? env[s.env];
    if (raw !== undefined && raw !== '') assign(input, s.path, convert(s, raw));
  }
  const modelEntries = flags.models.length > 0 ? flags.models : (env[MODEL_FLAG.env] ?? '').split(',').filter((s) => s.trim() !== '');
  if (modelEntries.length > 0) assign(input, ['models', 'specs'], modelEntries.map((e) => parseModelSpec(e.trim())));
  try {
    return createConfig(input as ConfigInput);
  } catch (error) {
    throw error instanceof ConfigError ? new ConfigError(withFlagName(error.message)) : error;
  }
}

/** A validation message names the config path (models.maxBatchSize); on the command line, name the flag and variable too. */
function withFlagName(message: string): string {
  const setting = SETTINGS.find((s) => message.startsWith(`${s.path.join('.')} `));
  return setting ? `--${setting.flag} (${setting.env}): ${message}` : message;
}
