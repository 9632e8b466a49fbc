// Resizing to the encoder's input in plain JS, written straight into pixel_values.
//
// transformers.js (in Node) resizes with sharp: `affine([W/w, 0, 0, H/h])` with the PIL
// resample mode's interpolator, on the decoded 8-bit RGB pixels. Running a second sharp
// pipeline per image cost more than the pixels do, so this file computes what libvips'
// affine computes for that call, integer for integer, and writes each output value
// through the rescale/normalise table: one pass from decoded pixels to [3, H, W] floats.
//
// What libvips 8.18 does for a scale-only affine (resample/affine.c, interpolate.c,
// bicubic.cpp, transform.c), and so what this file reproduces:
// - The inverse transform is `ia = (1 / (a·d))·d`, `id = (1 / (a·d))·a` with a = W/w,
//   d = H/h (not w/W: the last bit can differ).
// - The input is embedded in a border of `offset + 1` black pixels (offset = 0 for
//   nearest and bilinear, 1 for bicubic), so coordinates live in that padded space and
//   edge samples blend with black, as sharp's do.
// - A row's input y is `id·y + 1 + offset`; along the row, x starts at `1 + offset` and
//   `ia` is *added* once per output pixel (the accumulated sum, not x·ia).
// - Bilinear on uchar: 12-bit fixed-point weights from the truncated fraction,
//   c4 = (Y·X) >> 12, c2 = ((4096 − Y)·X) >> 12, c3 = Y − c4, c1 = (4096 − Y) − c2, and
//   (Σ c·p + 2048) >> 12.
// - Nearest: the pixel at the truncated coordinate.
// - Bicubic (Catmull-Rom) on uchar: the fraction rounded to 1/64, integer coefficient
//   tables (truncated from doubles × 4096), a horizontal pass per stencil row then a
//   vertical one, each `(v + 2048) >> 12`, clipped to 0..255.
// An image already at the output size is not resampled (transformers.js skips the call).
// test/vision/resample.test.ts checks this against sharp's affine across sizes and
// contents; test/parity checks the whole path against transformers.js's processor.
import type { RgbImage } from './image.ts';

/** PIL resample codes Iris supports: 0 nearest, 2 bilinear, 3 bicubic. */
export type ResampleMode = 0 | 2 | 3;

const SHIFT = 12;
const ONE = 1 << SHIFT;
const HALF = ONE >> 1;
/** libvips' VIPS_TRANSFORM_SCALE: bicubic fractions are rounded to 1/64. */
const TABLE_STEPS = 64;

/** One output axis: the input coordinate of each output position, in libvips' padded space. */
function axisPositions(outSize: number, step: number, offset: number, accumulate: boolean): Float64Array {
  const pos = new Float64Array(outSize);
  if (accumulate) {
    // x: the start, then `ix += ddx` per output pixel.
    let p = 1 + offset;
    for (let i = 0; i < outSize; i++, p += step) pos[i] = p;
  } else {
    // y: computed afresh per row.
    for (let i = 0; i < outSize; i++) pos[i] = step * i + 1 + offset;
  }
  return pos;
}

/** The inverse scale factors exactly as libvips' vips__transform_calc_inverse computes them. */
function inverseSteps(inW: number, inH: number, outW: number, outH: number): [number, number] {
  const a = outW / inW;
  const d = outH / inH;
  const inv = 1 / (a * d);
  return [inv * d, inv * a];
}

let bicubicTable: Int32Array | undefined;

/** Catmull-Rom coefficients for fractions 0/64 … 64/64, as libvips' integer tables hold them. */
function catmullTable(): Int32Array {
  if (bicubicTable) return bicubicTable;
  const table = new Int32Array((TABLE_STEPS + 1) * 4);
  for (let t = 0; t <= TABLE_STEPS; t++) {
    const x = Math.fround(t / TABLE_STEPS);
    const cr1 = 1 - x;
    const cr2 = -0.5 * x;
    const cr3 = cr1 * cr2;
    const cone = cr1 * cr3;
    const cfou = x * cr3;
    const cr4 = cfou - cone;
    const ctwo = cr1 - cone + cr4;
    const cthr = x - cfou - cr4;
    table[t * 4] = Math.trunc(cone * ONE);
    table[t * 4 + 1] = Math.trunc(ctwo * ONE);
    table[t * 4 + 2] = Math.trunc(cthr * ONE);
    table[t * 4 + 3] = Math.trunc(cfou * ONE);
  }
  bicubicTable = table;
  return table;
}

/**
 * Resize `image` to outW × outH as sharp's affine does, and write each channel value v of
 * output pixel p to `out[c·outW·outH + p] = lut[c·256 + v]` (planar, CHW). With an
 * identity table this is the resized image itself; with preprocess.ts's table it is
 * pixel_values.
 */
export function resampleToPlanes(image: RgbImage, outW: number, outH: number, mode: ResampleMode, lut: Float32Array): Float32Array {
  const { width: w, height: h, data } = image;
  if (data.length !== w * h * 3) throw new RangeError(`image data has ${data.length} bytes, expected ${w * h * 3}`);
  if (lut.length !== 3 * 256) throw new RangeError('lut must hold 3 × 256 values');
  const plane = outW * outH;
  const out = new Float32Array(3 * plane);
  if (w === outW && h === outH) {
    for (let p = 0, i = 0; p < plane; p++, i += 3) {
      out[p] = lut[data[i]];
      out[plane + p] = lut[256 + data[i + 1]];
      out[2 * plane + p] = lut[512 + data[i + 2]];
    }
    return out;
  }
  const [ia, id] = inverseSteps(w, h, outW, outH);
  if (mode === 2) bilinear(data, w, h, outW, outH, ia, id, lut, out);
  else if (mode === 0) nearest(data, w, h, outW, outH, ia, id, lut, out);
  else bicubic(data, w, h, outW, outH, ia, id, lut, out);
  return out;
}

/** libvips' clip in padded space: outside it the pixel is the background (black). */
function inArea(fx: number, fy: number, offset: number, w: number, h: number): boolean {
  return fx >= offset && fx <= offset + w && fy >= offset && fy <= offset + h;
}

function bilinear(data: Uint8Array, w: number, h: number, outW: number, outH: number, ia: number, id: number, lut: Float32Array, out: Float32Array): void {
  const plane = outW * outH;
  const xs = axisPositions(outW, ia, 0, true);
  const ys = axisPositions(outH, id, 0, false);
  // Per column: the left input column (padded space minus the 1-pixel border) and weight.
  const col = new Int32Array(outW);
  const fracX = new Int32Array(outW);
  for (let x = 0; x < outW; x++) {
    const ix = xs[x] | 0;
    col[x] = ix - 1;
    fracX[x] = ((xs[x] - ix) * ONE) | 0;
  }
  // Samples outside the input are black (the affine's embed border).
  const at = (r: number, c: number, ch: number): number => (r >= 0 && r < h && c >= 0 && c < w ? data[(r * w + c) * 3 + ch] : 0);
  for (let y = 0; y < outH; y++) {
    const iy = ys[y] | 0;
    const row = iy - 1;
    const Y = ((ys[y] - iy) * ONE) | 0;
    const Yd = ONE - Y;
    const rowInside = row >= 0 && row + 1 < h;
    const top = row * w * 3;
    const bottom = top + w * 3;
    for (let x = 0; x < outW; x++) {
      const p = y * outW + x;
      const c0 = col[x];
      if (!inArea(c0 + 1, iy, 0, w, h)) {
        out[p] = lut[0];
        out[plane + p] = lut[256];
        out[2 * plane + p] = lut[512];
        continue;
      }
      const X = fracX[x];
      const c4 = (Y * X) >> SHIFT;
      const c2 = (Yd * X) >> SHIFT;
      const c3 = Y - c4;
      const c1 = Yd - c2;
      if (rowInside && c0 >= 0 && c0 + 1 < w) {
        const i1 = top + c0 * 3;
        const i3 = bottom + c0 * 3;
        for (let ch = 0; ch < 3; ch++) {
          const v = (c1 * data[i1 + ch] + c2 * data[i1 + 3 + ch] + c3 * data[i3 + ch] + c4 * data[i3 + 3 + ch] + HALF) >> SHIFT;
          out[ch * plane + p] = lut[ch * 256 + v];
        }
      } else {
        for (let ch = 0; ch < 3; ch++) {
          const v = (c1 * at(row, c0, ch) + c2 * at(row, c0 + 1, ch) + c3 * at(row + 1, c0, ch) + c4 * at(row + 1, c0 + 1, ch) + HALF) >> SHIFT;
          out[ch * plane + p] = lut[ch * 256 + v];
        }
      }
    }
  }
}

function nearest(data: Uint8Array, w: number, h: number, outW: number, outH: number, ia: number, id: number, lut: Float32Array, out: Float32Array): void {
  const plane = outW * outH;
  const xs = axisPositions(outW, ia, 0, true);
  const ys = axisPositions(outH, id, 0, false);
  for (let y = 0; y < outH; y++) {
    const iy = ys[y] | 0;
    for (let x = 0; x < outW; x++) {
      const ix = xs[x] | 0;
      const p = y * outW + x;
      const r = iy - 1;
      const c = ix - 1;
      const inside = inArea(ix, iy, 0, w, h) && r >= 0 && r < h && c >= 0 && c < w;
      const i = (r * w + c) * 3;
      for (let ch = 0; ch < 3; ch++) out[ch * plane + p] = lut[ch * 256 + (inside ? data[i + ch] : 0)];
    }
  }
}

function bicubic(data: Uint8Array, w: number, h: number, outW: number, outH: number, ia: number, id: number, lut: Float32Array, out: Float32Array): void {
  const plane = outW * outH;
  const table = catmullTable();
  const offset = 1; // the 4×4 stencil starts one pixel up and left
  const xs = axisPositions(outW, ia, offset, true);
  const ys = axisPositions(outH, id, offset, false);
  // The fraction's table row: (int)(x·64·2), its low 7 bits, rounded to 0..64.
  const tableRow = (v: number): number => ((((v * TABLE_STEPS * 2) | 0) & (TABLE_STEPS * 2 - 1)) + 1) >> 1;
  // Padded space has a border of offset + 1 = 2 pixels; outside the input is black.
  const at = (r: number, c: number, ch: number): number => (r >= 0 && r < h && c >= 0 && c < w ? data[(r * w + c) * 3 + ch] : 0);
  const rows = new Int32Array(4);
  for (let y = 0; y < outH; y++) {
    const iy = ys[y] | 0;
    const ty = tableRow(ys[y]) * 4;
    const r0 = iy - 1 - (offset + 1);
    for (let x = 0; x < outW; x++) {
      const ix = xs[x] | 0;
      const p = y * outW + x;
      if (!inArea(ix, iy, offset, w, h)) {
        for (let ch = 0; ch < 3; ch++) out[ch * plane + p] = lut[ch * 256];
        continue;
      }
      const tx = tableRow(xs[x]) * 4;
      const c0 = ix - 1 - (offset + 1);
      for (let ch = 0; ch < 3; ch++) {
        for (let j = 0; j < 4; j++) {
          const r = r0 + j;
          rows[j] = (table[tx] * at(r, c0, ch) + table[tx + 1] * at(r, c0 + 1, ch) + table[tx + 2] * at(r, c0 + 2, ch) + table[tx + 3] * at(r, c0 + 3, ch) + HALF) >> SHIFT;
        }
        const v = (table[ty] * rows[0] + table[ty + 1] * rows[1] + table[ty + 2] * rows[2] + table[ty + 3] * rows[3] + HALF) >> SHIFT;
        out[ch * plane + p] = lut[ch * 256 + (v < 0 ? 0 : v > 255 ? 255 : v)];
      }
    }
  }
}
