// The model registry's outcome reports, which feed iris_generations_total.
import { describe, expect, it } from 'vitest';
import { TASKS } from '../../src/contract/types.ts';
import { createModelRegistry, type GenerationOutcome } from '../../src/server/registry.ts';
import { createFakeGenerator } from '../api/support/fake-generator.ts';

describe('generation outcomes', () => {
  it('a generation cancelled part-way is reported as CANCELLED, not ok', async () => {
    const outcomes: GenerationOutcome[] = [];
    const generator = createFakeGenerator({ text: 'one two three four five six', stepMs: 20 });
    const registry = createModelRegistry({
      specs: [{ id: 'fake', dir: '/nonexistent', dtype: 'fp32' }],
      load: async () => ({ generator, tasks: TASKS }),
      onOutcome: (o) => outcomes.push(o),
    });
    await registry.loaded;
    const request = { task: 'caption' as const, image: new Uint8Array(4) };
    await registry.generate(undefined, request);
    const stop = new AbortController();
    const running = registry.generate(undefined, request, { signal: stop.signal });
    await generator.started(2);
    stop.abort();
    expect((await running).finishReason).toBe('cancelled');
    expect(outcomes.map((o) => o.outcome)).toEqual(['ok', 'CANCELLED']);
    expect(outcomes[1].result).toBeUndefined();
  });
});
