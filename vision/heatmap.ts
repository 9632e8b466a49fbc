// Drawing an attention grid over the picture it came from: the grid (rows × cols over the
// preprocessed image, which is the whole image resized to a square) is min-max scaled,
// upsampled to the image's own size, coloured with viridis and blended over the image,
// which keeps its aspect ratio. PNG out, rendered with sharp. Also a contact sheet: many
// overlays in a grid, each labelled.
import sharp from 'sharp';

export interface Grid {
  readonly rows: number;
  readonly cols: number;
  readonly weights: ArrayLike<number>; // rows × cols, row-major
}

export interface OverlayOptions {
  /** Width of the picture drawn (default: the image's own, at most 512 px). */
  readonly width?: number;
  /** Weight of the heatmap in the blend, 0..1 (default 0.55). */
  readonly opacity?: number;
}

const MAX_DEFAULT_WIDTH = 512;

/** The image (EXIF-rotated, alpha on white) with the grid's heatmap blended over it, as PNG. */
export async function renderOverlay(image: Uint8Array, grid: Grid, options: OverlayOptions = {}): Promise<Buffer> {
  const meta = await sharp(image).rotate().metadata();
  const [w0, h0] = meta.orientation && meta.orientation >= 5 ? [meta.height!, meta.width!] : [meta.width!, meta.height!];
  const width = Math.max(8, Math.min(2048, Math.round(options.width ?? Math.min(w0, MAX_DEFAULT_WIDTH))));
  const height = Math.max(8, Math.round((width * h0) / w0));
  const base = await sharp(image).rotate().flatten({ background: '#ffffff' }).resize(width, height, { fit: 'fill' }).removeAlpha().raw().toBuffer();
  const heat = await upsampled(grid, width, height);
  const alpha = Math.min(1, Math.max(0, options.opacity ?? 0.55));
  const out = Buffer.alloc(width * height * 3);
  for (let p = 0; p < width * height; p++) {
    const [r, g, b] = VIRIDIS[heat[p]];
    out[3 * p] = (1 - alpha) * base[3 * p] + alpha * r;
    out[3 * p + 1] = (1 - alpha) * base[3 * p + 1] + alpha * g;
    out[3 * p + 2] = (1 - alpha) * base[3 * p + 2] + alpha * b;
  }
  return sharp(out, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

/** PNG panels (same size) in a grid of `columns`, each with its label underneath. */
export async function contactSheet(panels: readonly { png: Buffer; label: string }[], columns = 6): Promise<Buffer> {
  if (panels.length === 0) throw new RangeError('a contact sheet needs at least one panel');
  const { width = 1, height = 1 } = await sharp(panels[0].png).metadata();
  const [labelH, gap] = [22, 6];
  const cols = Math.min(columns, panels.length);
  const rows = Math.ceil(panels.length / cols);
  const cellW = width + gap;
  const cellH = height + labelH + gap;
  const labels = panels.map((p, i) => {
    const x = (i % cols) * cellW + gap / 2 + width / 2;
    const y = Math.floor(i / cols) * cellH + height + 16;
    return `<text x="${x}" y="${y}" text-anchor="middle" font-family="DejaVu Sans, sans-serif" font-size="14" fill="#111">${escapeXml(p.label)}</text>`;
  });
  const svg = Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${cols * cellW}" height="${rows * cellH}">${labels.join('')}</svg>`);
  return sharp({ create: { width: cols * cellW, height: rows * cellH, channels: 3, background: '#ffffff' } })
    .composite([
      ...panels.map((p, i) => ({ input: p.png, left: (i % cols) * cellW + gap / 2, top: Math.floor(i / cols) * cellH })),
      { input: svg, left: 0, top: 0 },
    ])
    .png()
    .toBuffer();
}

/** The grid min-max scaled to 0..255 and resized (bilinear-like, sharp's cubic) to width × height. */
async function upsampled(grid: Grid, width: number, height: number): Promise<Uint8Array> {
  const values = Array.from(grid.weights);
  if (values.length !== grid.rows * grid.cols) throw new RangeError(`a ${grid.rows}×${grid.cols} grid needs ${grid.rows * grid.cols} weights, got ${values.length}`);
  const [lo, hi] = [Math.min(...values), Math.max(...values)];
  const scaled = Uint8Array.from(values, (v) => (hi > lo ? Math.round((255 * (v - lo)) / (hi - lo)) : 0));
  const out = await sharp(scaled, { raw: { width: grid.cols, height: grid.rows, channels: 1 } })
    .resize(width, height, { fit: 'fill', kernel: 'cubic' })
    .raw()
    .toBuffer();
  return new Uint8Array(out.buffer, out.byteOffset, width * height);
}

/** Viridis (perceptually uniform), from its published polynomial fit, as 256 RGB triples. */
const VIRIDIS: readonly (readonly [number, number, number])[] = Array.from({ length: 256 }, (_, i) => {
  const t = i / 255;
  const c = [
    [0.2777273272234177, 0.005407344544966578, 0.3340998053353061],
    [0.1050930431085774, 1.404613529898575, 1.384590162594685],
    [-0.3308618287255563, 0.214847559468213, 0.09509516302823659],
    [-4.634230498983486, -5.799100973351585, -19.33244095627987],
    [6.228269936347081, 14.17993336680509, 56.69055260068105],
    [4.776384997670288, -13.74514537774601, -65.35303263337234],
    [-5.435455855934631, 4.645852612178535, 26.3124352495832],
  ];
  const channel = (k: number): number => Math.round(255 * Math.min(1, Math.max(0, c.reduceRight((acc, row) => acc * t + row[k], 0))));
  return [channel(0), channel(1), channel(2)] as const;
});

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}
