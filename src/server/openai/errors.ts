// Iris's error codes as the OpenAI API words errors: an HTTP status and a body
// `{ error: { message, type, code, param } }`, where `code` is Iris's own stable code (the
// README's table) and `type` the OpenAI category clients switch on. Retryable refusals
// (OVERLOADED, RATE_LIMITED) carry a `retry-after` header, which the openai client obeys.
import { IrisError, type IrisErrorCode } from '../../contract/types.ts';

export type OpenAIErrorType = 'invalid_request_error' | 'authentication_error' | 'not_found_error' | 'rate_limit_error' | 'server_error' | 'timeout_error';

interface Mapping {
  readonly status: number;
  readonly type: OpenAIErrorType;
}

const MAPPINGS: Readonly<Record<IrisErrorCode | 'INTERNAL' | 'PAYLOAD_TOO_LARGE' | 'NOT_FOUND', Mapping>> = {
  BAD_IMAGE: { status: 400, type: 'invalid_request_error' },
  UNSUPPORTED_IMAGE_FORMAT: { status: 400, type: 'invalid_request_error' },
  IMAGE_TOO_LARGE: { status: 413, type: 'invalid_request_error' },
  IMAGE_FETCH_FAILED: { status: 400, type: 'invalid_request_error' },
  URL_NOT_ALLOWED: { status: 400, type: 'invalid_request_error' },
  INVALID_OPTIONS: { status: 400, type: 'invalid_request_error' },
  PROMPT_TOO_LONG: { status: 400, type: 'invalid_request_error' },
  // The chat routes never ask for attention maps; here for completeness of the table.
  ATTENTION_UNAVAILABLE: { status: 400, type: 'invalid_request_error' },
  PAYLOAD_TOO_LARGE: { status: 413, type: 'invalid_request_error' },
  MODEL_NOT_FOUND: { status: 404, type: 'not_found_error' },
  NOT_FOUND: { status: 404, type: 'not_found_error' },
  UNAUTHENTICATED: { status: 401, type: 'authentication_error' },
  RATE_LIMITED: { status: 429, type: 'rate_limit_error' },
  OVERLOADED: { status: 503, type: 'server_error' },
  MODEL_UNAVAILABLE: { status: 503, type: 'server_error' },
  SHUTTING_DOWN: { status: 503, type: 'server_error' },
  TIMEOUT: { status: 504, type: 'timeout_error' },
  // The client is gone; nobody reads this. 499 is nginx's "client closed request".
  CANCELLED: { status: 499, type: 'invalid_request_error' },
  INTERNAL: { status: 500, type: 'server_error' },
};

export type OpenAICode = keyof typeof MAPPINGS;

export interface OpenAIErrorBody {
  readonly error: { readonly message: string; readonly type: OpenAIErrorType; readonly code: string; readonly param: string | null };
}

/** An error the OpenAI routes raise themselves (not from the engine), e.g. a missing field. */
export class OpenAIRequestError extends Error {
  constructor(
    readonly code: OpenAICode,
    message: string,
    readonly param: string | null = null,
  ) {
    super(message);
    this.name = 'OpenAIRequestError';
  }
}

export interface OpenAIError {
  readonly status: number;
  readonly body: OpenAIErrorBody;
  readonly retryAfterSeconds: number | undefined;
}

/** Any thrown value as an OpenAI error; unknown errors are INTERNAL with no details. */
export function toOpenAIError(error: unknown, param: string | null = null): OpenAIError {
  let code: OpenAICode = 'INTERNAL';
  let message = 'internal server error';
  let retryAfterSeconds: number | undefined;
  if (error instanceof OpenAIRequestError) {
    ({ code, message } = error);
    param = error.param ?? param;
  } else if (error instanceof IrisError) {
    ({ code, message, retryAfterSeconds } = error);
  }
  const { status, type } = MAPPINGS[code];
  return { status, body: { error: { message, type, code, param } }, retryAfterSeconds };
}

export function errorResponse(error: OpenAIError): Response {
  const headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8' };
  if (error.retryAfterSeconds !== undefined) headers['retry-after'] = String(error.retryAfterSeconds);
  return new Response(JSON.stringify(error.body), { status: error.status, headers });
}
