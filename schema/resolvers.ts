// Resolvers for iris.graphql. Enums map to the core's lower-case values, so results pass
// through as the Generator returned them.
import type { ModelStatus } from '../src/server/registry.ts';
import type { Task, Timings } from '../src/contract/types.ts';
import { runGeneration, type GenerationArgs, type IrisContext } from './generation.ts';
import { streamGeneration, type GenerationEvent } from './stream.ts';

type Resolver<TArgs, TResult> = (root: unknown, args: TArgs, ctx: IrisContext) => TResult;

function generation(task: Task): Resolver<GenerationArgs, ReturnType<typeof runGeneration>> {
  return (_root, args, ctx) => runGeneration(task, args, ctx);
}

function stream(task: Task) {
  return {
    subscribe: ((_root, args, ctx) =>
      streamGeneration((hooks) => runGeneration(task, args, ctx, hooks), ctx.deadline.signal)) as Resolver<
      GenerationArgs,
      AsyncIterableIterator<GenerationEvent>
    >,
    resolve: (event: GenerationEvent) => event,
  };
}

interface ModelView {
  readonly id: string;
  readonly tasks: readonly Task[];
  readonly state: ModelStatus['state'];
  readonly ready: boolean;
  readonly dtype: string;
  readonly default: boolean;
}

export const resolvers = {
  Query: {
    caption: generation('caption'),
    answer: generation('answer'),
    generate: generation('generate'),
    models: ((_root, _args, ctx) =>
      ctx.iris.registry.list().map((m) => ({
        id: m.id,
        tasks: m.tasks,
        state: m.state,
        ready: m.state === 'ready',
        dtype: m.dtype,
        default: m.id === ctx.iris.registry.defaultModel,
      }))) as Resolver<Record<string, never>, ModelView[]>,
  },
  Subscription: {
    captionStream: stream('caption'),
    answerStream: stream('answer'),
    generateStream: stream('generate'),
  },
  Task: { CAPTION: 'caption', ANSWER: 'answer', GENERATE: 'generate' },
  FinishReason: { EOS: 'eos', LENGTH: 'length', STOP: 'stop', CANCELLED: 'cancelled' },
  SpeculativeMode: { OFF: 'off', DRAFT: 'draft', NGRAM: 'ngram' },
  WarningCode: { UNKNOWN_WORDS: 'UNKNOWN_WORDS' },
  Timings: {
    draftedTokens: (t: Timings) => t.draftedTokens ?? 0,
    acceptedTokens: (t: Timings) => t.acceptedTokens ?? 0,
    acceptanceRate: (t: Timings) => (t.draftedTokens ? (t.acceptedTokens ?? 0) / t.draftedTokens : null),
  },
  ModelState: { LOADING: 'loading', READY: 'ready', FAILED: 'failed' },
};
