// Resolvers for iris.graphql. Enums map to the core's lower-case values, so results pass
// through as the Generator returned them.
import { GraphQLError, GraphQLScalarType, Kind, type GraphQLResolveInfo, type SelectionSetNode } from 'graphql';
import type { ModelStatus } from '../src/server/registry.ts';
import type { GenerationResult, Task, Timings } from '../src/contract/types.ts';
import { attentionOverlay, runGeneration, type GenerationArgs, type IrisContext } from './generation.ts';
import { streamGeneration, type GenerationEvent } from './stream.ts';

type Resolver<TArgs, TResult> = (root: unknown, args: TArgs, ctx: IrisContext, info: GraphQLResolveInfo) => TResult;

function generation(task: Task): Resolver<GenerationArgs, ReturnType<typeof runGeneration>> {
  return (_root, args, ctx) => runGeneration(task, args, ctx);
}

/** Whether a selection on GenerationEvent (fragments included) reads `token`: then each event carries one piece. */
function selectsToken(selectionSet: SelectionSetNode | undefined, info: GraphQLResolveInfo): boolean {
  for (const selection of selectionSet?.selections ?? []) {
    if (selection.kind === Kind.FIELD && selection.name.value === 'token') return true;
    if (selection.kind === Kind.INLINE_FRAGMENT && selectsToken(selection.selectionSet, info)) return true;
    if (selection.kind === Kind.FRAGMENT_SPREAD && selectsToken(info.fragments[selection.name.value]?.selectionSet, info)) return true;
  }
  return false;
}

function stream(task: Task) {
  return {
    subscribe: ((_root, args, ctx, info) =>
      streamGeneration((hooks) => runGeneration(task, args, ctx, hooks), ctx.deadline.signal, {
        coalesce: !info.fieldNodes.some((node) => selectsToken(node.selectionSet, info)),
        intervalMs: ctx.iris.streamIntervalMs,
        output: ctx.res,
      })) as Resolver<
      GenerationArgs,
      AsyncIterableIterator<GenerationEvent>
    >,
    resolve: (event: GenerationEvent) => event,
  };
}

const NOT_A_FILE = 'File takes a file part of a multipart request (GraphQL multipart request spec); JSON and WebSocket requests send the image as url or base64';

/**
 * By shape, not class: the server's fetch ponyfill has its own File. JSON and WebSocket
 * values cannot hold functions, so only a multipart file part passes.
 */
export function isFile(value: unknown): value is File {
  const v = value as Partial<File> | null;
  return typeof v === 'object' && v !== null && typeof v.arrayBuffer === 'function' && typeof v.size === 'number';
}

/**
 * Only the multipart parser makes Files; anything else in a File variable (a JSON string,
 * number, object or list; any literal) is refused while variables are coerced, before a
 * resolver reads it.
 */
export const FileScalar = new GraphQLScalarType({
  name: 'File',
  description: 'A file part of a multipart request (GraphQL multipart request spec).',
  parseValue: (value) => {
    if (isFile(value)) return value;
    throw new GraphQLError(NOT_A_FILE);
  },
  parseLiteral: () => {
    throw new GraphQLError(NOT_A_FILE);
  },
  serialize: () => {
    throw new GraphQLError('File is an input type only');
  },
});

interface ModelView {
  readonly id: string;
  readonly tasks: readonly Task[];
  readonly state: ModelStatus['state'];
  readonly ready: boolean;
  readonly kind: ModelStatus['kind'];
  readonly dtype: string | null;
  readonly default: boolean;
  readonly attention: boolean;
  readonly family: 'cross-attention' | 'joint' | undefined;
  readonly detail: string | null;
  readonly remote: { readonly name: string; readonly inFlight: number; readonly healthy: boolean } | null;
}

export const resolvers = {
  File: FileScalar,
  Query: {
    caption: generation('caption'),
    answer: generation('answer'),
    generate: generation('generate'),
    models: ((_root, _args, ctx) =>
      ctx.iris.registry.list().map((m) => ({
        id: m.id,
        tasks: m.tasks,
        state: m.state,
        ready: m.state === 'ready' && m.healthy,
        kind: m.kind,
        dtype: m.dtype ?? null,
        default: m.id === ctx.iris.registry.defaultModel,
        attention: m.attention,
        family: m.family,
        detail: m.detail ?? null,
        remote: m.remote ? { ...m.remote, healthy: m.healthy } : null,
      }))) as Resolver<Record<string, never>, ModelView[]>,
  },
  Subscription: {
    captionStream: stream('caption'),
    answerStream: stream('answer'),
    generateStream: stream('generate'),
  },
  Task: { CAPTION: 'caption', ANSWER: 'answer', GENERATE: 'generate' },
  FinishReason: { EOS: 'eos', LENGTH: 'length', STOP: 'stop', CANCELLED: 'cancelled' },
  SpeculativeMode: { OFF: 'off', DRAFT: 'draft', NGRAM: 'ngram', MEDUSA: 'medusa' },
  WarningCode: { UNKNOWN_WORDS: 'UNKNOWN_WORDS' },
  Timings: {
    prefixCached: (t: Timings) => (t.prefixCached === undefined ? false : t.prefixCached),
    resultCached: (t: Timings) => t.resultCached ?? false,
    resultShared: (t: Timings) => t.resultShared ?? false,
    draftedTokens: (t: Timings) => t.draftedTokens ?? 0,
    acceptedTokens: (t: Timings) => t.acceptedTokens ?? 0,
    acceptanceRate: (t: Timings) => (t.draftedTokens ? (t.acceptedTokens ?? 0) / t.draftedTokens : null),
  },
  ModelState: { LOADING: 'loading', READY: 'ready', FAILED: 'failed' },
  ModelFamily: { CROSS_ATTENTION: 'cross-attention', JOINT_EMBEDDING: 'joint' },
  ModelKind: { LOCAL: 'local', REMOTE: 'remote' },
  Generation: {
    attentionOverlay: (result: GenerationResult, args: { token?: number | null; width?: number | null }) => attentionOverlay(result, args),
  },
};
