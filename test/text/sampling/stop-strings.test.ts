// Stop strings: matched across token boundaries, the text before them kept, the rest held back.
import { describe, expect, it } from 'vitest';
import { StopStringMatcher } from '../../../text/sampling/stop-strings.ts';

describe('StopStringMatcher', () => {
  it('holds back possible stop prefixes and cuts at the first match', () => {
    const m = new StopStringMatcher(['and a', 'zz']);
    expect(m.push('red circle ').emit).toBe('red circle ');
    expect(m.push('an')).toEqual({ emit: '', isStopped: false });
    expect(m.push('d a small')).toEqual({ emit: '', isStopped: true });
    expect(m.text).toBe('red circle ');
  });

  it('releases a held-back tail that never became a stop string', () => {
    const m = new StopStringMatcher(['and a']);
    expect(m.push('red an').emit).toBe('red ');
    expect(m.flush()).toBe('an');
    expect(m.text).toBe('red an');
  });
});
