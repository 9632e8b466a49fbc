// Request body caps, enforced from Content-Length before any byte is read: one cap for
// JSON bodies (base64 images travel there), one for multipart uploads. A body without a
// length (chunked) is refused with 411, because it could only be capped after reading it.
import type { Plugin } from 'graphql-yoga';

export interface BodyLimits {
  readonly bodyBytes: number;
  readonly uploadBytes: number;
}

function errorResponse(status: number, code: string, message: string): Response {
  return new Response(JSON.stringify({ errors: [{ message, extensions: { code } }] }), {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8' },
  });
}

function hasBody(request: Request): boolean {
  return request.method !== 'GET' && request.method !== 'HEAD' && request.method !== 'OPTIONS';
}

/** The Response to send instead of handling the request, or undefined to let it through. */
export function checkBodyLimits(request: Request, limits: BodyLimits): Response | undefined {
  if (!hasBody(request)) return undefined;
  const isMultipart = (request.headers.get('content-type') ?? '').toLowerCase().startsWith('multipart/');
  const cap = isMultipart ? limits.uploadBytes : limits.bodyBytes;
  const header = request.headers.get('content-length');
  if (header === null) {
    const isChunked = /chunked/i.test(request.headers.get('transfer-encoding') ?? '');
    return isChunked ? errorResponse(411, 'LENGTH_REQUIRED', 'send the request body with a Content-Length') : undefined;
  }
  const length = Number(header);
  if (!Number.isFinite(length) || length > cap) {
    const what = isMultipart ? 'upload' : 'request body';
    return errorResponse(413, 'PAYLOAD_TOO_LARGE', `the ${what} is ${header} bytes; the limit is ${cap}`);
  }
  return undefined;
}

export function useBodyLimit(limits: BodyLimits): Plugin {
  return {
    onRequest({ request, endResponse }) {
      const refusal = checkBodyLimits(request, limits);
      if (refusal) endResponse(refusal);
    },
  };
}
