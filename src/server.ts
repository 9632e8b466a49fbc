// `npm start`: the GraphQL service on the configured models (default: the shipped
// assets/models/shapes-base). Configuration: environment and flags, see README.md.
import { pathToFileURL } from 'node:url';
import { ConfigError, engineConfigOf, type IrisConfig } from './config/config.ts';
import { loadConfig } from './config/settings.ts';
import { createIrisApp } from './server/app.ts';
import { listen, type IrisServer } from './server/listen.ts';
import type { MemoryRelease } from './server/memory/release.ts';
import { setHeapGrowing } from './server/memory/heap-growing.ts';
import { createEngineLoader } from './server/load-models.ts';
import { checkModelFolder } from './model/files.ts';
import { IrisError } from './contract/types.ts';
import { createRedisStore } from './server/redis-store.ts';
import { isRemoteDir } from './config/remote-model.ts';

/**
 * Access log lines go to stdout together once per event-loop turn: under load the
 * responses that start in one turn (a decode step's first pieces) share one write
 * instead of a synchronous console.log each. Lines still waiting at exit are written then.
 */
function batchedLines(write: (text: string) => void): (line: string) => void {
  let lines: string[] = [];
  const flush = (): void => {
    if (lines.length === 0) return;
    const text = `${lines.join('\n')}\n`;
    lines = [];
    write(text);
  };
  process.once('exit', flush);
  return (line) => {
    if (lines.push(line) === 1) setImmediate(flush);
  };
}

/**
 * Writes to stdout until stdout goes away: a closed pipe (the reader of `npm start | head`
 * or a supervisor that died) ends the access log, not the server and its requests.
 */
function stdoutWriter(): (text: string) => void {
  let isOpen = true;
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    isOpen = false;
  });
  return (text) => {
    if (isOpen) process.stdout.write(text);
  };
}

const MB = 1024 * 1024;

function logMemoryRelease(release: MemoryRelease): void {
  const trim = { released: "malloc's free pages returned", nothing: 'malloc had no free pages to return', unavailable: 'malloc_trim unavailable', off: '--release-memory false' }[release.trim];
  console.log(`iris: memory: after ${Math.round(release.burstBytes / MB)} MB of request bodies, RSS ${Math.round(release.rssBeforeBytes / MB)} -> ${Math.round(release.rssAfterBytes / MB)} MB (garbage collected; ${trim})`);
}

const MALLOC_TRIM_MISSING = 'native/malloc-trim.node is not built (npm ci builds it where a C compiler and Node headers are; npm run build:native tries again), so memory that malloc freed after a burst stays with the process';

export async function startServer(config: IrisConfig): Promise<IrisServer> {
  setHeapGrowing(config.server.heapGrowingPercent);
  const { redisUrl } = config.cache;
  const store = redisUrl ? createRedisStore({ ...config.cache, redisUrl }) : undefined;
  const load = createEngineLoader({ engine: engineConfigOf(config), sharedEmbeddings: store, resultCacheBytes: config.cache.resultCacheBytes, sharedResults: store });
  const app = createIrisApp({ config, load, logAccess: batchedLines(stdoutWriter()) });
  const listening = await listen(app, config.server, { onMemoryRelease: logMemoryRelease, onMallocTrimMissing: () => console.warn(`iris: warning: ${MALLOC_TRIM_MISSING}`) }).catch(async (error: unknown) => {
    await store?.close();
    throw error;
  });
  // The Redis connection ends with the server (it would keep the process alive).
  const server: IrisServer = store
    ? {
        ...listening,
        close: () => listening.close().finally(() => store.close()),
        drain: (timeoutMs, delayMs) => listening.drain(timeoutMs, delayMs).finally(() => store.close()),
      }
    : listening;
  // One model that fails does not take the others down; with none left, the server stops.
  void app.registry.settled.then((models) => {
    const failed = models.filter((m) => m.state === 'failed');
    for (const m of failed) console.error(`iris: model ${m.id} failed to load: ${m.detail}`);
    const serving = models.filter((m) => m.state === 'ready').map((m) => m.id);
    if (serving.length > 0) {
      console.log(`iris: models ready (${serving.join(', ')})${failed.length > 0 ? `; failed: ${failed.map((m) => m.id).join(', ')}` : ''}`);
      return;
    }
    console.error('iris: no model could be loaded');
    process.exitCode = 1;
    void server.close();
  });
  return server;
}

const HINT = [
  'The shipped model is trained by `npm run train` into assets/models/shapes-base.',
  'To try the service on the tiny test model: npm start -- --model tiny=assets/models/tiny-random',
].join('\n');

async function main(): Promise<void> {
  const config = loadConfig(process.argv.slice(2), process.env);
  await Promise.all(config.models.specs.filter((s) => !isRemoteDir(s.dir)).map(checkModelFolder));
  const server = await startServer(config);
  console.log(`iris: serving ${server.url} (GraphiQL in a browser; /health /ready /metrics)`);
  console.log(`iris: playground ${server.url.replace(/graphql$/, '')}`);
  let isStopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (isStopping) {
      console.error(`iris: ${signal} again: exiting now`);
      process.exit(1);
    }
    isStopping = true;
    const { drainTimeoutMs, drainDelayMs } = config.server;
    const delay = drainDelayMs > 0 ? `not ready but serving for ${drainDelayMs} ms, then ` : '';
    console.log(`iris: ${signal}: draining (${delay}up to ${drainTimeoutMs} ms for what runs; a second signal exits at once)`);
    server.drain(drainTimeoutMs, drainDelayMs).then(
      ({ inFlight, acceptedDuringDelay, cutShort }) => {
        const delayed = drainDelayMs > 0 ? `; ${acceptedDuringDelay} requests arrived during the ${drainDelayMs} ms drain delay and were accepted` : '';
        console.log(`iris: drained: ${inFlight - cutShort} of ${inFlight} in-flight requests finished, ${cutShort} ended with SHUTTING_DOWN${delayed}`);
        process.exit(0);
      },
      (error: unknown) => {
        console.error('iris: drain failed', error);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((error: unknown) => {
    if (error instanceof ConfigError) console.error(`iris: configuration: ${error.message}`);
    else if (error instanceof IrisError && error.code === 'MODEL_NOT_FOUND') console.error(`iris: ${error.message}\n${HINT}`);
    else console.error('iris: failed to start', error);
    process.exit(1);
  });
}
