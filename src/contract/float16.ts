// IEEE half-precision <-> float32 for fp16 model exports, whose logits, pasts and hidden
// states cross the ONNX boundary as raw 16-bit patterns (Uint16Array).
import type * as ort from 'onnxruntime-node';

export function halfToFloat(bits: Uint16Array): Float32Array {
  return Float32Array.from(bits, (h) => {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
    if (exp === 31) return frac ? NaN : sign * Infinity;
    return sign * 2 ** (exp - 15) * (1 + frac / 1024);
  });
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Round-to-nearest-even float32 → half bit patterns. */
export function floatToHalf(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    f32[0] = values[i];
    const x = u32[0];
    const sign = (x >>> 16) & 0x8000;
    const exp = ((x >>> 23) & 0xff) - 127 + 15;
    let mant = x & 0x7fffff;
    if (((x >>> 23) & 0xff) === 0xff) {
      out[i] = sign | 0x7c00 | (mant ? 0x200 : 0); // Inf / NaN
    } else if (exp >= 31) {
      out[i] = sign | 0x7c00; // overflow → Inf
    } else if (exp <= 0) {
      if (exp < -10) {
        out[i] = sign; // underflow → ±0
        continue;
      }
      mant |= 0x800000; // subnormal half
      const shift = 14 - exp;
      const half = mant >>> shift;
      const rest = mant & ((1 << shift) - 1);
      const mid = 1 << (shift - 1);
      out[i] = sign | (half + (rest > mid || (rest === mid && half & 1) ? 1 : 0));
    } else {
      const half = (exp << 10) | (mant >>> 13);
      const rest = mant & 0x1fff;
      out[i] = sign | (half + (rest > 0x1000 || (rest === 0x1000 && half & 1) ? 1 : 0));
    }
  }
  return out;
}

/**
 * A float32 or float16 tensor's values as float32. onnxruntime-node 1.30 hands out float16
 * data as Uint16Array bit patterns on Node 20, but as Float16Array (numbers) where the
 * runtime has one (Node 24+): only the former needs bit decoding.
 */
export function tensorFloats(tensor: ort.Tensor): Float32Array {
  if (tensor.type === 'float32') return tensor.data as Float32Array;
  if (tensor.type !== 'float16') throw new TypeError(`expected a float32 or float16 tensor, got ${tensor.type}`);
  const data = tensor.data;
  return data instanceof Uint16Array ? halfToFloat(data) : Float32Array.from(data as ArrayLike<number>);
}
