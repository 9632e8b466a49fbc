// Reads a JSON request body under a byte cap: refused from Content-Length before a byte is
// read, or counted while reading when the body is chunked.
import { OpenAIRequestError } from './errors.ts';

function tooLarge(what: string, cap: number): OpenAIRequestError {
  return new OpenAIRequestError('PAYLOAD_TOO_LARGE', `the request body is ${what}; the limit is ${cap} bytes (--body-limit)`);
}

async function readCapped(request: Request, cap: number): Promise<string> {
  const header = request.headers.get('content-length');
  if (header !== null && (!/^\d+$/.test(header) || Number(header) > cap)) throw tooLarge(`${header} bytes`, cap);
  if (!request.body) return '';
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  const reader = request.body.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    bytes += value.byteLength;
    if (bytes > cap) {
      await reader.cancel();
      throw tooLarge(`over ${cap} bytes`, cap);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export async function readJsonBody(request: Request, cap: number): Promise<unknown> {
  const type = request.headers.get('content-type') ?? '';
  if (!type.toLowerCase().includes('json')) throw new OpenAIRequestError('INVALID_OPTIONS', `send the request as JSON (content-type: application/json), not ${type || 'no content-type'}`);
  const text = await readCapped(request, cap);
  try {
    return JSON.parse(text);
  } catch {
    throw new OpenAIRequestError('INVALID_OPTIONS', 'the request body is not valid JSON');
  }
}
