// Request body caps: one for JSON bodies (base64 images travel there), one for multipart
// uploads. With a Content-Length the request is refused before a byte is read; without
// one (chunked) the body is counted as the request parser reads it and cut at the cap.
import { createGraphQLError, type Plugin } from 'graphql-yoga';

export interface BodyLimits {
  readonly bodyBytes: number;
  readonly uploadBytes: number;
}

const CODE = 'PAYLOAD_TOO_LARGE';

function tooLargeResponse(message: string): Response {
  return new Response(JSON.stringify({ errors: [{ message, extensions: { code: CODE } }] }), {
    status: 413,
    headers: { 'content-type': 'application/json; charset=utf-8' },
  });
}

function tooLargeError(cap: number): Error {
  // A GraphQLError, so the parsers pass it on (rather than reporting invalid JSON) and
  // yoga answers with its extensions.http status.
  return createGraphQLError(`the request body is over the limit of ${cap} bytes`, {
    extensions: { code: CODE, http: { status: 413, spec: false } },
  });
}

function capFor(request: Request, limits: BodyLimits): { cap: number; what: string } {
  const isMultipart = (request.headers.get('content-type') ?? '').toLowerCase().startsWith('multipart/');
  return isMultipart ? { cap: limits.uploadBytes, what: 'upload' } : { cap: limits.bodyBytes, what: 'request body' };
}

/** The Response to send instead of handling the request, or undefined to let it through. */
export function checkContentLength(request: Request, limits: BodyLimits): Response | undefined {
  const header = request.headers.get('content-length');
  if (header === null) return undefined;
  const { cap, what } = capFor(request, limits);
  const length = Number(header);
  if (!/^\d+$/.test(header) || length > cap) return tooLargeResponse(`the ${what} is ${header} bytes; the limit is ${cap}`);
  return undefined;
}

function countingBody(request: Request, cap: number): Request {
  let bytes = 0;
  const counted = (request.body as ReadableStream<Uint8Array>).pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        bytes += chunk.byteLength;
        if (bytes > cap) controller.error(tooLargeError(cap));
        else controller.enqueue(chunk);
      },
    }),
  );
  return new Request(request.url, { method: request.method, headers: request.headers, signal: request.signal, body: counted, duplex: 'half' } as RequestInit);
}

export function useBodyLimit(limits: BodyLimits): Plugin {
  return {
    onRequest({ request, endResponse }) {
      const refusal = checkContentLength(request, limits);
      if (refusal) endResponse(refusal);
    },
    onRequestParse({ request, requestParser, setRequestParser }) {
      if (request.headers.get('content-length') !== null || request.body === null || !requestParser) return;
      const { cap } = capFor(request, limits);
      setRequestParser((req) => requestParser(countingBody(req, cap)));
    },
  };
}
