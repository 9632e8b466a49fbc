// POST /v1/chat/completions: one chat request becomes one Iris generation on the same path
// as GraphQL (runGeneration: option checks, image intake with its URL policy, the deadline,
// the model's engine and line). Streamed answers are SSE `data:` chunks ending in
// `data: [DONE]`; the response starts at the first decoded piece, so a request refused
// before it (bad image, OVERLOADED, ...) still gets its HTTP status. A client that goes
// away aborts the generation between decode steps.
import { randomUUID } from 'node:crypto';
import { runGeneration, type GenerationArgs, type IrisContext, type IrisServices } from '../../../schema/generation.ts';
import { streamGeneration, type GenerationEvent } from '../../../schema/stream.ts';
import { createDeadline } from '../plugins/deadline.ts';
import type { RequestNotes } from '../plugins/access-log.ts';
import type { ModelStatus } from '../registry.ts';
import { readJsonBody } from './body.ts';
import { errorResponse, OpenAIRequestError, toOpenAIError } from './errors.ts';
import { readChatRequest, type ChatRequest } from './request.ts';
import { chunkOf, completionOf, irisFinishFields, logprobsOf, type CompletionIds } from './response.ts';
import { chooseTask } from './tasks.ts';

export interface ChatRouteOptions {
  readonly timeoutMs: number;
  readonly bodyBytes: number;
  /** Where unexpected errors are reported (their details never reach the client). */
  readonly logUnexpected: (error: unknown) => void;
  /** For the access log. */
  readonly notes?: RequestNotes;
}

async function modelFor(services: IrisServices, id: string | undefined): Promise<ModelStatus> {
  const wanted = id ?? services.registry.defaultModel;
  const find = () => services.registry.list().find((m) => m.id === wanted);
  const status = find();
  if (!status) throw new OpenAIRequestError('MODEL_NOT_FOUND', `no model "${wanted}"; models: ${services.registry.list().map((m) => m.id).join(', ')}`, 'model');
  if (status.state !== 'loading') return status;
  await services.registry.loaded.catch(() => undefined);
  return find()!;
}

function argsOf(chat: ChatRequest, model: ModelStatus): { task: 'caption' | 'answer' | 'generate'; args: GenerationArgs } {
  const chosen = chooseTask(chat.text, model);
  const base = { image: chat.image, model: model.id, options: chat.options as Record<string, unknown> };
  if (chosen.task === 'answer') return { task: 'answer', args: { ...base, question: chosen.question } };
  if (chosen.task === 'generate') return { task: 'generate', args: { ...base, prompt: chosen.prompt } };
  return { task: 'caption', args: base };
}

const encoder = new TextEncoder();
const sse = (data: unknown): Uint8Array => encoder.encode(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);

function streamResponse(events: AsyncIterableIterator<GenerationEvent>, first: GenerationEvent, ids: CompletionIds, chat: ChatRequest, options: ChatRouteOptions): Response {
  const withLogprobs = chat.options.logprobs === true || (chat.options.topLogprobs ?? 0) > 0;
  const toChunks = (event: GenerationEvent): Uint8Array[] => {
    if (!event.done) {
      const logprobs = withLogprobs ? logprobsOf(event.tokens) : null;
      return [sse(chunkOf(ids, { delta: { content: event.delta }, logprobs }, chat.includeUsage))];
    }
    const result = event.generation!;
    const out = [sse(chunkOf(ids, { delta: {}, ...irisFinishFields(result) }, chat.includeUsage))];
    if (chat.includeUsage) out.push(sse(chunkOf(ids, null, true, result.usage)));
    out.push(sse('[DONE]'));
    return out;
  };
  let pending: GenerationEvent | undefined = first;
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(sse(chunkOf(ids, { delta: { role: 'assistant', content: '' } }, chat.includeUsage)));
    },
    async pull(controller) {
      try {
        const next = pending ?? (await events.next()).value;
        pending = undefined;
        if (!next) return controller.close();
        for (const chunk of toChunks(next)) controller.enqueue(chunk);
        if (next.done) controller.close();
      } catch (error) {
        // Headers are sent: the error travels as an event, which the openai client throws.
        const answer = toOpenAIError(error);
        if (answer.body.error.code === 'INTERNAL') options.logUnexpected(error);
        controller.enqueue(sse(answer.body));
        controller.close();
      }
    },
    async cancel() {
      await events.return?.();
    },
  });
  return new Response(body, { headers: { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' } });
}

export async function handleChatCompletion(request: Request, services: IrisServices, options: ChatRouteOptions): Promise<Response> {
  try {
    const chat = readChatRequest(await readJsonBody(request, options.bodyBytes));
    options.notes?.note(request, { model: chat.model ?? services.registry.defaultModel });
    const model = await modelFor(services, chat.model);
    const { task, args } = argsOf(chat, model);
    const ctx: IrisContext = { iris: services, deadline: createDeadline(options.timeoutMs, request.signal) };
    const ids: CompletionIds = { id: `chatcmpl-${randomUUID().replaceAll('-', '')}`, created: Math.floor(Date.now() / 1000), model: model.id };
    if (!chat.stream) {
      const result = await runGeneration(task, args, ctx);
      const withLogprobs = chat.options.logprobs === true || (chat.options.topLogprobs ?? 0) > 0;
      return Response.json(completionOf(ids, result, withLogprobs));
    }
    // A chunk's delta may hold several pieces (their logprobs all listed), as OpenAI's own streams do.
    const events = streamGeneration((hooks) => runGeneration(task, args, ctx, hooks), ctx.deadline.signal, { coalesce: true, intervalMs: services.streamIntervalMs });
    const first = await events.next(); // throws when the request fails before its first piece
    return streamResponse(events, first.value as GenerationEvent, ids, chat, options);
  } catch (error) {
    const answer = toOpenAIError(error);
    if (answer.body.error.code === 'INTERNAL') options.logUnexpected(error);
    options.notes?.note(request, { errors: [answer.body.error.code] });
    return errorResponse(answer);
  }
}
