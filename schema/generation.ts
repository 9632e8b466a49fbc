// From GraphQL arguments to a finished (or streamed) generation: read the image, check
// the options and text at the edge (before queueing), run under the request's deadline.
import type { ImageIntake, ImageInput } from '../src/server/intake/intake.ts';
import type { ModelRegistry } from '../src/server/registry.ts';
import type { Deadline } from '../src/server/plugins/deadline.ts';
import { resolveOptions } from '../text/sampling/options.ts';
import { IrisError, type GenerateHooks, type GenerationOptions, type GenerationRequest, type GenerationResult, type Task, type TokenAttention } from '../src/contract/types.ts';
import { renderOverlay } from '../vision/heatmap.ts';

/** What resolvers need besides the request's own deadline; built once per server. */
export interface IrisServices {
  readonly registry: ModelRegistry;
  readonly intake: ImageIntake;
  readonly promptChars: number;
  /** Least time between two streamed events carrying text, in ms (0: an event as soon as the reader asks); schema/stream.ts. */
  readonly streamIntervalMs: number;
}

export interface IrisContext {
  readonly iris: IrisServices;
  readonly deadline: Deadline;
  /** The Node response an HTTP request is answered on (yoga's server context); absent over WebSocket. */
  readonly res?: Corkable;
}

/** A writable whose writes can be held back and sent together (node:http's ServerResponse). */
export interface Corkable {
  cork(): void;
  uncork(): void;
  readonly writableEnded: boolean;
}

/** Arguments of caption/answer/generate and their streams (question/prompt per task). */
export interface GenerationArgs {
  readonly image: ImageInput;
  readonly options?: Readonly<Record<string, unknown>> | null;
  readonly model?: string | null;
  readonly question?: string;
  readonly prompt?: string;
}

// GraphQL passes explicit nulls; the core's contract is "absent means default".
function dropNulls(options: GenerationArgs['options']): GenerationOptions | undefined {
  if (!options) return undefined;
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== null && v !== undefined)) as GenerationOptions;
}

function checkText(name: 'question' | 'prompt', value: string | undefined, maxChars: number): void {
  if (value !== undefined && value.length > maxChars) {
    throw new IrisError('PROMPT_TOO_LONG', `${name} is ${value.length} characters; the limit is ${maxChars}`);
  }
}

async function prepareRequest(task: Task, args: GenerationArgs, ctx: IrisContext): Promise<GenerationRequest> {
  const options = dropNulls(args.options);
  resolveOptions(options); // throws INVALID_OPTIONS naming the option and its range
  checkText('question', args.question, ctx.iris.promptChars);
  checkText('prompt', args.prompt, ctx.iris.promptChars);
  const image = await ctx.iris.intake.read(args.image, ctx.deadline.signal);
  return { task, image: image.bytes, question: args.question, prompt: args.prompt, options };
}

function timeoutError(deadline: Deadline): IrisError {
  if (deadline.isShutDown()) return new IrisError('SHUTTING_DOWN', 'the server is shutting down and its drain time ran out before this generation finished');
  return new IrisError('TIMEOUT', `the request took longer than ${deadline.timeoutMs} ms`);
}

/** The request's image, for the overlay field of the result it produced. */
const imageOf = new WeakMap<GenerationResult, Uint8Array>();

/** `Generation.attentionOverlay`: one token's map (or the mean of all) over the request's image, as a PNG data URL. */
export async function attentionOverlay(result: GenerationResult, args: { token?: number | null; width?: number | null }): Promise<string | null> {
  const image = imageOf.get(result);
  const maps = result.tokens.map((t) => t.attention);
  if (!image || maps.length === 0 || maps.some((m) => m === undefined)) return null;
  const { token, width } = args;
  if (token !== undefined && token !== null && (!Number.isInteger(token) || token < 0 || token >= maps.length)) {
    throw new IrisError('INVALID_OPTIONS', `token must be an index from 0 to ${maps.length - 1}, got ${token}`);
  }
  if (width !== undefined && width !== null && (!Number.isInteger(width) || width < 8 || width > 2048)) throw new IrisError('INVALID_OPTIONS', `width must be an integer from 8 to 2048, got ${width}`);
  const grid = token === undefined || token === null ? meanGrid(maps as TokenAttention[]) : maps[token]!;
  const png = await renderOverlay(image, grid, { width: width ?? undefined });
  return `data:image/png;base64,${png.toString('base64')}`;
}

function meanGrid(maps: readonly TokenAttention[]): TokenAttention {
  const weights = maps[0].weights.map((_, i) => maps.reduce((sum, m) => sum + m.weights[i], 0) / maps.length);
  return { ...maps[0], weights };
}

const isCutShort = (deadline: Deadline): boolean => deadline.isExpired() || deadline.isShutDown();

/**
 * Runs one generation. `signal` (default: the deadline's) lets a stream add its own
 * cancellation; a run cut short by the deadline is reported as TIMEOUT, not as a partial
 * result.
 */
export async function runGeneration(
  task: Task,
  args: GenerationArgs,
  ctx: IrisContext,
  hooks: GenerateHooks = {},
): Promise<GenerationResult> {
  const { deadline } = ctx;
  const release = deadline.hold();
  try {
    const request = await prepareRequest(task, args, ctx);
    const signal = hooks.signal ?? deadline.signal;
    const result = await ctx.iris.registry.generate(args.model, request, { ...hooks, signal });
    if (result.finishReason === 'cancelled' && isCutShort(deadline)) throw timeoutError(deadline);
    imageOf.set(result, request.image);
    return result;
  } catch (error) {
    if (isCutShort(deadline) && !(error instanceof IrisError && error.code !== 'CANCELLED')) throw timeoutError(deadline);
    throw error;
  } finally {
    release();
  }
}
