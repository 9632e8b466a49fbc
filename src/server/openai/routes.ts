// The OpenAI-compatible routes beside GraphQL, as one yoga plugin: GET /v1/models,
// GET /v1/models/{id} and POST /v1/chat/completions. Requests under /v1 never reach
// GraphQL; unknown ones get an OpenAI-style 404.
import type { Plugin } from 'graphql-yoga';
import type { IrisServices } from '../../../schema/generation.ts';
import type { ModelStatus } from '../registry.ts';
import { handleChatCompletion, type ChatRouteOptions } from './chat.ts';
import { errorResponse, OpenAIRequestError, toOpenAIError } from './errors.ts';
import { familyOf } from './tasks.ts';

export const OPENAI_PREFIX = '/v1';

export interface OpenAIRoutesOptions extends ChatRouteOptions {
  /** The services one request runs on (its client's limits applied). */
  readonly services: (request: Request) => IrisServices;
}

function modelObject(model: ModelStatus, created: number) {
  return {
    id: model.id,
    object: 'model' as const,
    created,
    owned_by: 'iris',
    // Iris's own fields: whether it serves yet, and how chat messages map to its tasks.
    ready: model.state === 'ready' && model.healthy,
    tasks: model.tasks,
    family: model.state === 'ready' ? familyOf(model) : null,
  };
}

function notFound(message: string, code: 'NOT_FOUND' | 'MODEL_NOT_FOUND' = 'NOT_FOUND'): Response {
  return errorResponse(toOpenAIError(new OpenAIRequestError(code, message, code === 'MODEL_NOT_FOUND' ? 'model' : null)));
}

async function route(request: Request, path: string, options: OpenAIRoutesOptions, created: number): Promise<Response> {
  const services = options.services(request);
  options.notes?.note(request, { operation: `${request.method} ${path}`.replace(/^POST \/chat\/completions$/, 'chat.completions').replace(/^GET \/models.*$/, 'models') });
  if (path === '/chat/completions' && request.method === 'POST') return handleChatCompletion(request, services, options);
  if (path === '/models' && request.method === 'GET') {
    return Response.json({ object: 'list', data: services.registry.list().map((m) => modelObject(m, created)) });
  }
  const modelId = /^\/models\/([^/]+)$/.exec(path)?.[1];
  if (modelId !== undefined && request.method === 'GET') {
    const model = services.registry.list().find((m) => m.id === decodeURIComponent(modelId));
    return model ? Response.json(modelObject(model, created)) : notFound(`no model "${decodeURIComponent(modelId)}"`, 'MODEL_NOT_FOUND');
  }
  return notFound(`no route ${request.method} ${OPENAI_PREFIX}${path}; Iris serves GET /v1/models and POST /v1/chat/completions`);
}

export function useOpenAIRoutes(options: OpenAIRoutesOptions): Plugin {
  const created = Math.floor(Date.now() / 1000);
  return {
    async onRequest({ request, url, endResponse }) {
      if (url.pathname !== OPENAI_PREFIX && !url.pathname.startsWith(`${OPENAI_PREFIX}/`)) return;
      endResponse(await route(request, url.pathname.slice(OPENAI_PREFIX.length), options, created));
    },
  };
}
