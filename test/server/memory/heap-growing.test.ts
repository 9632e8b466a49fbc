import { describe, expect, it } from 'vitest';
import { setHeapGrowing } from '../../../src/server/memory/heap-growing.ts';
import { loadConfig } from '../../../src/config/settings.ts';

describe('setHeapGrowing', () => {
  it('hands V8 the growing factor as a percent, 0 for its own', () => {
    const flags: string[] = [];
    setHeapGrowing(60, (f) => flags.push(f));
    setHeapGrowing(0, (f) => flags.push(f));
    expect(flags).toEqual(['--heap-growing-percent=60', '--heap-growing-percent=0']);
  });

  it('refuses what V8 could not take', () => {
    expect(() => setHeapGrowing(-1, () => undefined)).toThrow(RangeError);
    expect(() => setHeapGrowing(1.5, () => undefined)).toThrow(/whole number/);
  });

  it('is 100 unless the setting says otherwise, within 0 to 1000', () => {
    expect(loadConfig([], {}).server.heapGrowingPercent).toBe(100);
    expect(loadConfig([], { IRIS_HEAP_GROWING_PERCENT: '0' }).server.heapGrowingPercent).toBe(0);
    expect(loadConfig(['--heap-growing-percent', '150'], { IRIS_HEAP_GROWING_PERCENT: '0' }).server.heapGrowingPercent).toBe(150);
    expect(() => loadConfig(['--heap-growing-percent', '1001'], {})).toThrow(/server.heapGrowingPercent must be an integer in \[0, 1000\]/);
  });
});
