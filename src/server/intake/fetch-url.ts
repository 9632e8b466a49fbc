// Fetches an image URL on a client's behalf: http(s) only, every resolved address checked
// against the address policy on every hop, the connection pinned to the checked address
// (so a second DNS answer cannot swap in a private one), redirects followed by hand and
// counted, a deadline over the whole fetch, a byte cap while streaming.
import { lookup as dnsLookup } from 'node:dns/promises';
import http from 'node:http';
import https from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { IrisError } from '../../contract/types.ts';
import { anySignal } from '../any-signal.ts';
import type { UrlFetchConfig } from '../../config/config.ts';
import { createAddressPolicy, normalizeHost, type AddressPolicy } from './address-policy.ts';

export interface UrlFetcher {
  fetch(url: string, signal?: AbortSignal): Promise<Uint8Array>;
}

interface Hop {
  readonly url: URL;
  /** The checked address to connect to; undefined for an allow-listed host name. */
  readonly address: string | undefined;
}

function parseUrl(raw: string, base?: URL): URL {
  let url: URL;
  try {
    url = new URL(raw, base);
  } catch {
    throw new IrisError('IMAGE_FETCH_FAILED', `not a valid URL: ${raw.slice(0, 200)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new IrisError('URL_NOT_ALLOWED', `only http and https image URLs are fetched, not ${url.protocol}`);
  }
  return url;
}

async function resolveHop(url: URL, policy: AddressPolicy): Promise<Hop> {
  const host = normalizeHost(url.hostname);
  if (policy.isHostAllowed(host)) return { url, address: undefined };
  let addresses: string[];
  if (isIP(host) !== 0) addresses = [host];
  else {
    try {
      addresses = (await dnsLookup(host, { all: true, verbatim: true })).map((a) => a.address);
    } catch {
      throw new IrisError('IMAGE_FETCH_FAILED', `cannot resolve host ${host}`);
    }
  }
  // Every address must pass: the OS could connect to any of them.
  const refused = addresses.find((a) => !policy.isAddressAllowed(a));
  if (refused !== undefined || addresses.length === 0) {
    throw new IrisError('URL_NOT_ALLOWED', `${host} resolves to ${refused ?? 'nothing'}, a private, loopback or link-local address; a server operator can allow it with --url-allow (IRIS_URL_ALLOW)`);
  }
  return { url, address: addresses[0] };
}

function pinnedLookup(address: string): LookupFunction {
  const family = isIP(address);
  return (_hostname, options, callback) => {
    if (options.all) callback(null, [{ address, family }]);
    else callback(null, address, family);
  };
}

function request(hop: Hop, signal: AbortSignal): Promise<http.IncomingMessage> {
  const client = hop.url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.get(hop.url, {
      signal,
      headers: { accept: 'image/*' },
      ...(hop.address !== undefined ? { lookup: pinnedLookup(hop.address) } : {}),
    });
    req.once('response', resolve);
    req.once('error', reject);
  });
}

function checkResponse(res: http.IncomingMessage, url: URL, maxBytes: number): void {
  const status = res.statusCode ?? 0;
  if (status < 200 || status >= 300) throw new IrisError('IMAGE_FETCH_FAILED', `${url.host} answered HTTP ${status}`);
  const type = (res.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (!type.startsWith('image/') && type !== 'application/octet-stream') {
    throw new IrisError('IMAGE_FETCH_FAILED', `${url.host} sent content-type "${type}", not an image`);
  }
  const length = Number(res.headers['content-length'] ?? NaN);
  if (length > maxBytes) throw new IrisError('IMAGE_TOO_LARGE', `the image is ${length} bytes; the limit is ${maxBytes}`);
}

async function readCapped(res: http.IncomingMessage, maxBytes: number): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > maxBytes) {
      res.destroy();
      throw new IrisError('IMAGE_TOO_LARGE', `the image is over the limit of ${maxBytes} bytes`);
    }
    chunks.push(chunk);
  }
  return new Uint8Array(Buffer.concat(chunks, total));
}

function describeFailure(error: unknown, deadline: AbortSignal, signal: AbortSignal | undefined, config: UrlFetchConfig): unknown {
  if (error instanceof IrisError) return error;
  if (signal?.aborted) return new IrisError('CANCELLED', 'the request was cancelled while fetching the image');
  if (deadline.aborted) return new IrisError('IMAGE_FETCH_FAILED', `fetching the image took longer than ${config.timeoutMs} ms`);
  const code = (error as NodeJS.ErrnoException).code;
  return new IrisError('IMAGE_FETCH_FAILED', `fetching the image failed${code ? ` (${code})` : ''}`);
}

async function fetchWithin(raw: string, config: UrlFetchConfig, policy: AddressPolicy, maxBytes: number, signal: AbortSignal): Promise<Uint8Array> {
  let url = parseUrl(raw);
  for (let redirects = 0; ; redirects++) {
    const res = await request(await resolveHop(url, policy), signal);
    const location = res.headers.location;
    const status = res.statusCode ?? 0;
    if (status >= 300 && status < 400 && location !== undefined) {
      res.resume();
      if (redirects >= config.maxRedirects) {
        throw new IrisError('IMAGE_FETCH_FAILED', `more than ${config.maxRedirects} redirects`);
      }
      url = parseUrl(location, url);
      continue;
    }
    try {
      checkResponse(res, url, maxBytes);
    } catch (error) {
      res.destroy();
      throw error;
    }
    return readCapped(res, maxBytes);
  }
}

export function createUrlFetcher(config: UrlFetchConfig, maxBytes: number): UrlFetcher {
  const policy = createAddressPolicy(config.allow);
  return {
    async fetch(raw, signal) {
      const deadline = AbortSignal.timeout(config.timeoutMs);
      const combined = signal ? anySignal([signal, deadline]) : deadline;
      try {
        return await fetchWithin(raw, config, policy, maxBytes, combined);
      } catch (error) {
        throw describeFailure(error, deadline, signal, config);
      }
    },
  };
}
