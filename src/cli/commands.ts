// The `iris` commands that load a model: caption / ask / generate / batch / eval, and quantize.
// Loaded by src/cli.ts only once the arguments ask for one, so `iris --help` does not load
// onnxruntime and sharp.
import { readImageFile, runBatch } from './batch.ts';
import { UsageError, type CliSettings } from './args.ts';
import { runPointingGame, writeAttention } from './attention.ts';
import { runEval } from './eval.ts';
import { runDtype, runQuantize } from './quantize.ts';
import { onnxFiles } from '../model/files.ts';
import { DEFAULT_MODEL_DIR } from '../model/load.ts';
import { createEngine } from '../engine/create-engine.ts';
import type { Engine } from '../engine/engine.ts';
import { resolveOptions } from '../../text/sampling/options.ts';
import { IrisError, finishReasonName, type GenerationRequest, type GenerationResult, type Generator } from '../contract/types.ts';

function singleRequests(settings: CliSettings): { path: string; request: Omit<GenerationRequest, 'image'> }[] {
  const [first, second] = settings.positionals;
  const options = settings.options;
  switch (settings.command) {
    case 'caption':
      if (settings.positionals.length === 0) throw new UsageError('caption needs at least one image');
      return settings.positionals.map((path) => ({ path, request: { task: 'caption', options } }));
    case 'ask':
      if (settings.positionals.length !== 2) throw new UsageError('ask needs <image> "<question>"');
      return [{ path: first, request: { task: 'answer', question: second, options } }];
    case 'generate':
      if (settings.positionals.length !== 2) throw new UsageError('generate needs <image> "<prompt>"');
      return [{ path: first, request: { task: 'generate', prompt: second, options } }];
    default:
      throw new UsageError(`unknown command '${settings.command ?? ''}'`);
  }
}

async function runSingle(generator: Generator, settings: CliSettings): Promise<number> {
  let failures = 0;
  const jobs = singleRequests(settings);
  for (const { path, request } of jobs) {
    try {
      const image = await readImageFile(path);
      const onDelta = settings.isStreaming && !settings.isJson ? (d: { text: string }) => process.stdout.write(d.text) : undefined;
      const result = await generator.generate({ ...request, image }, { onDelta });
      printResult(path, result, settings, jobs.length > 1);
      if (settings.attention !== undefined) for (const written of await writeAttention(settings.attention, path, image, result)) console.error(`wrote ${written}`);
    } catch (err) {
      if (!(err instanceof IrisError)) throw err;
      failures++;
      if (settings.isJson) console.log(JSON.stringify({ image: path, error: { code: err.code, message: err.message } }));
      else console.error(`${path}: error [${err.code}]: ${err.message}`);
    }
  }
  return failures > 0 ? 1 : 0;
}

/** The text on stdout (JSON: the whole result, warnings and confidence included); in text mode, each warning on stderr. */
function printResult(path: string, result: GenerationResult, settings: CliSettings, isMany: boolean): void {
  if (settings.isJson) return console.log(JSON.stringify({ image: path, ...result, finishReason: finishReasonName(result.finishReason) }));
  if (settings.isStreaming) process.stdout.write('\n');
  else console.log(isMany ? `${path}\t${result.text}` : result.text);
  for (const warning of result.warnings) console.error(`${path}: warning [${warning.code}]: ${warning.message}`);
}

/** Every command that generates runs on the continuous-batching engine, as the server does. */
function loadEngine(settings: CliSettings): Promise<Engine> {
  const mode = resolveOptions({ speculative: settings.options.speculative }).speculative; // INVALID_OPTIONS for junk
  return createEngine({ modelDir: settings.modelDir, threads: settings.threads, speculative: mode, ...onnxFiles(runDtype(settings)) });
}

/** Runs a parsed command line that names a command; the exit status. */
export async function runCommand(settings: CliSettings): Promise<number> {
  if (settings.command === 'quantize') return runQuantize(settings);
  if (settings.command !== 'batch' && settings.command !== 'eval') singleRequests(settings); // usage errors before loading
  const engine = await loadEngine(settings);
  try {
    if (settings.command === 'batch') return await runBatch(engine, process.stdin, (line) => console.log(line));
    if (settings.command === 'eval' && settings.attention !== undefined) return await runPointingGame(engine, settings.positionals[0], settings.modelDir ?? DEFAULT_MODEL_DIR, settings.isJson, settings.isModelUpdated);
    if (settings.command === 'eval') return await runEval(engine, settings.positionals[0], settings);
    return await runSingle(engine, settings);
  } finally {
    await engine.release();
  }
}
