// Command-line parsing: a mistyped flag gets a suggestion, a number flag that is not a
// number names the flag and what was typed, and --attention takes a folder or none.
import { describe, expect, it } from 'vitest';
import { closestFlag, parseCli, UsageError } from '../../src/cli/args.ts';

describe('iris command line', () => {
  it('suggests the nearest flag for a mistyped one', () => {
    expect(() => parseCli(['caption', 'x.png', '--max-new-tokns', '3'])).toThrow(new UsageError('unknown flag --max-new-tokns; did you mean --max-new-tokens?'));
    expect(closestFlag('temprature')).toBe('temperature');
    expect(closestFlag('completely-unrelated-flag')).toBeUndefined();
  });

  it('names the flag and the text of a number that is not one', () => {
    expect(() => parseCli(['caption', 'x.png', '--max-new-tokens', 'abc'])).toThrow(/--max-new-tokens takes a number, got "abc"/);
    expect(parseCli(['caption', 'x.png', '--top-p', '0.5']).options.topP).toBe(0.5);
  });

  it('takes --attention with a folder, or bare (eval)', () => {
    expect(parseCli(['caption', 'x.png', '--attention', 'maps']).attention).toBe('maps');
    expect(parseCli(['eval', 'dir', '--attention']).attention).toBe('');
    expect(parseCli(['eval', 'dir', '--attention', '--json']).isJson).toBe(true);
    expect(parseCli(['caption', 'x.png', '--attention', 'maps']).options.attention).toBe(true);
  });
});
