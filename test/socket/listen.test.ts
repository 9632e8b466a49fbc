// Putting the app on a socket: a port already in use is a clear configuration error that
// names the flag, not a stack trace (and no second "internal error" from the WebSocket side).
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { describe, expect, it, vi } from 'vitest';
import { ConfigError } from '../../src/config/config.ts';
import { listen } from '../../src/server/listen.ts';
import { createTestApp } from '../api/support/app.ts';

describe('listen', () => {
  it('reports a port in use as a configuration error naming --port', async () => {
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const { port } = holder.address() as AddressInfo;
    const logged = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      const error = await listen(createTestApp(), { host: '127.0.0.1', port }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toMatch(new RegExp(`--port ${port} on 127.0.0.1 is already in use.*--port`));
      expect(logged).not.toHaveBeenCalled();
    } finally {
      logged.mockRestore();
      await new Promise<void>((resolve) => holder.close(() => resolve()));
    }
  });
});
