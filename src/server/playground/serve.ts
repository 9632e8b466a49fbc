// GET / : the web playground (plain HTML, CSS and one ES module beside this file, no
// build step), served by Iris itself so it works offline. The page talks to /graphql like
// any client. Only the files listed here are served; everything else falls through to yoga.
import { readFileSync } from 'node:fs';
import type { Plugin } from 'graphql-yoga';

const FILES: Readonly<Record<string, { file: string; type: string }>> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/playground/playground.js': { file: 'playground.js', type: 'text/javascript; charset=utf-8' },
  '/playground/playground.css': { file: 'playground.css', type: 'text/css; charset=utf-8' },
};

// Nothing leaves the server's origin except images the user points the page at by URL.
const CSP = "default-src 'self'; img-src 'self' data: blob: http: https:; connect-src 'self'; style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

export function usePlayground(): Plugin {
  const cache = new Map<string, string>();
  const read = (file: string): string => {
    let body = cache.get(file);
    if (!body) cache.set(file, (body = readFileSync(new URL(file, import.meta.url), 'utf8')));
    return body;
  };
  return {
    onRequest({ request, url, endResponse }) {
      const entry = FILES[url.pathname];
      if (!entry || (request.method !== 'GET' && request.method !== 'HEAD')) return;
      const headers = { 'content-type': entry.type, 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff', 'content-security-policy': CSP };
      endResponse(new Response(request.method === 'HEAD' ? null : read(entry.file), { headers }));
    },
  };
}
