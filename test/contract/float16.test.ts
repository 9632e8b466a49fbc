// float16 at the ONNX boundary: conversions both ways.
import { describe, expect, it } from 'vitest';

describe('float16 conversion', () => {
  it('round-trips values exactly representable in half precision and rounds the rest to nearest', async () => {
    const { floatToHalf, halfToFloat } = await import('../../src/contract/float16.ts');
    const exact = Float32Array.from([0, -0, 1, -2.5, 65504, 2 ** -14, 2 ** -24, 0.099975586, Infinity, -Infinity]);
    expect(Array.from(halfToFloat(floatToHalf(exact)))).toEqual(Array.from(exact));
    expect(halfToFloat(floatToHalf(Float32Array.from([NaN])))[0]).toBeNaN();
    const some = Float32Array.from([0.1, 3.14159, -1234.567, 1e-5, 1e6]);
    const back = halfToFloat(floatToHalf(some));
    some.forEach((v, i) => {
      if (Math.abs(v) > 65504) expect(back[i]).toBe(Infinity);
      else expect(Math.abs(back[i] - v)).toBeLessThanOrEqual(Math.max(Math.abs(v) * 2 ** -11, 2 ** -25));
    });
  });
});
