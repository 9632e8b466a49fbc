// Access control at the door of every HTTP request: /metrics needs the metrics key when
// one is set; GraphQL and /v1 need an API key when keys are set, and count against the
// client's rate limits. /health, /ready and the GraphiQL page stay open (GraphiQL sends
// its requests with the headers typed into its editor). Refusals are worded for the route:
// GraphQL errors with extensions.code, or OpenAI error bodies under /v1.
import type { Plugin } from 'graphql-yoga';
import { IrisError } from '../../contract/types.ts';
import type { AccessControl } from '../access.ts';
import { errorResponse, toOpenAIError } from '../openai/errors.ts';

export interface AccessPluginOptions {
  readonly access: AccessControl;
  readonly graphqlPath: string;
  readonly metricsPath: string;
  readonly openaiPrefix: string;
}

const STATUS: Partial<Record<string, number>> = { UNAUTHENTICATED: 401, RATE_LIMITED: 429 };

function graphqlRefusal(error: IrisError): Response {
  const headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8' };
  if (error.code === 'UNAUTHENTICATED') headers['www-authenticate'] = 'Bearer';
  if (error.retryAfterSeconds !== undefined) headers['retry-after'] = String(error.retryAfterSeconds);
  const extensions = { code: error.code, ...(error.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: error.retryAfterSeconds }) };
  return new Response(JSON.stringify({ errors: [{ message: error.message, extensions }] }), { status: STATUS[error.code] ?? 400, headers });
}

function openaiRefusal(error: IrisError): Response {
  const response = errorResponse(toOpenAIError(error));
  if (error.code === 'UNAUTHENTICATED') response.headers.set('www-authenticate', 'Bearer');
  return response;
}

/** The peer address of a node request, when the server adapter exposes it. */
function addressOf(serverContext: unknown): string | undefined {
  return (serverContext as { req?: { socket?: { remoteAddress?: string } } } | undefined)?.req?.socket?.remoteAddress;
}

export function useAccessControl(options: AccessPluginOptions): Plugin {
  const { access } = options;
  return {
    onRequest({ request, url, endResponse, serverContext }) {
      const path = url.pathname;
      const authorization = request.headers.get('authorization');
      if (path === options.metricsPath) {
        if (!access.mayReadMetrics(authorization)) endResponse(graphqlRefusal(new IrisError('UNAUTHENTICATED', '/metrics needs the metrics key: send Authorization: Bearer <key>')));
        return;
      }
      const isOpenAI = path === options.openaiPrefix || path.startsWith(`${options.openaiPrefix}/`);
      if (!isOpenAI && path !== options.graphqlPath) return;
      const isGraphiqlPage = request.method === 'GET' && (request.headers.get('accept') ?? '').includes('text/html');
      if (isGraphiqlPage) return;
      try {
        const client = access.authenticate(authorization, addressOf(serverContext));
        access.admit(client);
        access.remember(request, client);
      } catch (error) {
        if (!(error instanceof IrisError)) throw error;
        endResponse(isOpenAI ? openaiRefusal(error) : graphqlRefusal(error));
      }
    },
  };
}
