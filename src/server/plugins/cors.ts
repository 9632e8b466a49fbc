// CORS from the server config. Not yoga's default, which echoes any origin and allows
// credentials: '*' answers any origin (echoed, with Vary: Origin) without credentials, a list answers only its own
// origins (with credentials when configured), and an empty list sends no CORS headers.
import type { CORSOptions } from 'graphql-yoga';
import type { ServerConfig } from '../../config/config.ts';

/** Headers a browser client may read: the rate-limit hint. */
const EXPOSED = ['retry-after'];

export function corsOptionsOf(server: Pick<ServerConfig, 'corsOrigins' | 'corsCredentials'>): CORSOptions | ((request: Request) => CORSOptions) {
  const { corsOrigins: origins, corsCredentials: credentials } = server;
  if (origins.length === 0) return false;
  if (origins.includes('*')) return { origin: '*', credentials: false, exposedHeaders: EXPOSED };
  return (request) => {
    const origin = request.headers.get('origin');
    return origin !== null && origins.includes(origin) ? { origin, credentials, exposedHeaders: EXPOSED } : false;
  };
}
