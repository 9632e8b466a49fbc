// Reading a request: body caps, one for JSON bodies (base64 images travel there), one for
// multipart uploads. With a Content-Length the request is refused before a byte is read;
// without one (chunked) the body is counted as the request parser reads it and cut at the
// cap, answered PAYLOAD_TOO_LARGE whichever parser was reading (yoga's multipart parser
// reported it as invalid multipart data). A parser that fails on malformed parameters
// (GET `variables` that are not JSON, a multipart `map` whose values are not lists) is
// answered BAD_REQUEST, not as an internal error.
import { GraphQLError } from 'graphql';
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

interface CountedBody {
  readonly request: Request;
  isOver(): boolean;
}

function countingBody(request: Request, cap: number): CountedBody {
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
  const init = { method: request.method, headers: request.headers, signal: request.signal, body: counted, duplex: 'half' } as RequestInit;
  return { request: new Request(request.url, init), isOver: () => bytes > cap };
}

function badRequest(): GraphQLError {
  return createGraphQLError('the request parameters could not be read: GET variables and extensions must be JSON objects, a multipart map must map each file to a list of paths', {
    extensions: { code: 'BAD_REQUEST', http: { status: 400, spec: false } },
  });
}

type RequestParser = (request: Request) => unknown;

function readWithin(parser: RequestParser, limits: BodyLimits): RequestParser {
  return async (request) => {
    const isChunked = request.headers.get('content-length') === null && request.body !== null;
    const counted = isChunked ? countingBody(request, capFor(request, limits).cap) : undefined;
    try {
      return await parser(counted?.request ?? request);
    } catch (error) {
      if (counted?.isOver()) throw tooLargeError(capFor(request, limits).cap);
      if (!(error instanceof GraphQLError)) throw badRequest();
      // The parsers' own refusals ("Missing multipart form field") came without a code.
      if (error.extensions.code === undefined) throw createGraphQLError(error.message, { extensions: { ...error.extensions, code: 'BAD_REQUEST', http: { status: 400, spec: false } } });
      throw error;
    }
  };
}

export function useBodyLimit(limits: BodyLimits): Plugin {
  return {
    onRequest({ request, endResponse }) {
      const refusal = checkContentLength(request, limits);
      if (refusal) endResponse(refusal);
    },
    onRequestParse({ requestParser, setRequestParser }) {
      if (requestParser) setRequestParser(readWithin(requestParser as RequestParser, limits) as typeof requestParser);
    },
  };
}
