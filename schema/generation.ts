// From GraphQL arguments to a finished (or streamed) generation: read the image, check
// the options and text at the edge (before queueing), run under the request's deadline.
import type { ImageIntake, ImageInput } from '../src/server/intake/intake.ts';
import type { ModelRegistry } from '../src/server/registry.ts';
import type { Deadline } from '../src/server/plugins/deadline.ts';
import { resolveOptions } from '../text/sampling/options.ts';
import { IrisError, type GenerateHooks, type GenerationOptions, type GenerationRequest, type GenerationResult, type Task } from '../src/contract/types.ts';

/** What resolvers need besides the request's own deadline; built once per server. */
export interface IrisServices {
  readonly registry: ModelRegistry;
  readonly intake: ImageIntake;
  readonly promptChars: number;
}

export interface IrisContext {
  readonly iris: IrisServices;
  readonly deadline: Deadline;
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
    return result;
  } catch (error) {
    if (isCutShort(deadline) && !(error instanceof IrisError && error.code !== 'CANCELLED')) throw timeoutError(deadline);
    throw error;
  } finally {
    release();
  }
}
