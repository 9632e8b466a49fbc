// Cross-site requests that a browser sends without a CORS preflight (a form posting
// application/x-www-form-urlencoded, multipart/form-data or text/plain) must not run
// anything: a POST is taken as application/json (or application/graphql), whose content
// type forces a preflight, or as multipart/form-data only with a GraphQL-Require-Preflight
// (or Apollo-Require-Preflight) header, which a form cannot set. GET stays open: it
// cannot carry uploads, runs no mutations (there are none), and a cross-site page cannot
// read its answer; EventSource, which cannot set headers, streams over it.
import type { Plugin } from 'graphql-yoga';

const PREFLIGHT_HEADERS = ['graphql-require-preflight', 'apollo-require-preflight', 'x-apollo-operation-name'];
const PREFLIGHTED_TYPES = new Set(['application/json', 'application/graphql', 'application/graphql+json']);

function refusal(status: number, code: string, message: string): Response {
  return new Response(JSON.stringify({ errors: [{ message, extensions: { code } }] }), {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8' },
  });
}

/** The Response refusing a POST that could have come from a cross-site form, or undefined. */
export function checkPreflightable(request: Request): Response | undefined {
  if (request.method !== 'POST') return undefined;
  const mediaType = (request.headers.get('content-type') ?? '').split(';')[0].trim().toLowerCase();
  if (PREFLIGHTED_TYPES.has(mediaType)) return undefined;
  if (mediaType === 'multipart/form-data') {
    if (PREFLIGHT_HEADERS.some((h) => request.headers.has(h))) return undefined;
    return refusal(400, 'PREFLIGHT_REQUIRED', 'a multipart request needs a GraphQL-Require-Preflight header (any value), so that a cross-site form cannot send one');
  }
  return refusal(415, 'UNSUPPORTED_MEDIA_TYPE', `POST bodies must be application/json, or multipart/form-data with a GraphQL-Require-Preflight header; got ${mediaType || 'no content type'}`);
}

export function useCsrfPrevention(graphqlPath: string): Plugin {
  return {
    onRequest({ request, url, endResponse }) {
      if (url.pathname !== graphqlPath) return;
      const refused = checkPreflightable(request);
      if (refused) endResponse(refused);
    },
  };
}
