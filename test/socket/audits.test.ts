// graphql-http's GraphQL-over-HTTP conformance audits against a real server on 127.0.0.1:
// every MUST passes; SHOULDs and MAYs are reported, and the SHOULDs are expected to pass too.
import { serverAudits } from 'graphql-http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFakeGenerator } from '../api/support/fake-generator.ts';
import { startIris, type RunningIris } from './support.ts';

let iris: RunningIris;
beforeAll(async () => {
  iris = await startIris({ generator: createFakeGenerator() });
});
afterAll(() => iris.server.close());

describe('graphql-http audits', () => {
  for (const audit of serverAudits({ url: () => iris.url })) {
    const isMust = audit.name.startsWith('MUST');
    it(audit.name, async () => {
      const result = await audit.fn();
      if (isMust) expect(result.status, result.status === 'ok' ? '' : result.reason).toBe('ok');
      else expect(['ok', 'warn']).toContain(result.status);
    });
  }
});
