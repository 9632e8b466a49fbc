// A small bar chart of the benchmark, drawn as SVG and rendered to PNG with sharp.
import sharp from 'sharp';

export interface Bar {
  label: string;
  value: number;
  color: string;
}

export interface Panel {
  title: string;
  unit: string;
  bars: Bar[];
}

const WIDTH = 420;
const HEIGHT = 300;

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function panelSvg(panel: Panel, x0: number): string {
  const max = Math.max(...panel.bars.map((b) => b.value), 1e-9);
  const plotTop = 50;
  const plotHeight = HEIGHT - 110;
  const barWidth = Math.min(90, (WIDTH - 60) / panel.bars.length - 20);
  const parts = [`<text x="${x0 + WIDTH / 2}" y="28" font-size="16" text-anchor="middle" font-weight="bold">${escape(panel.title)}</text>`];
  panel.bars.forEach((bar, i) => {
    const h = (bar.value / max) * plotHeight;
    const x = x0 + 40 + i * (barWidth + 20);
    const y = plotTop + plotHeight - h;
    parts.push(`<rect x="${x}" y="${y}" width="${barWidth}" height="${h}" fill="${bar.color}"/>`);
    parts.push(`<text x="${x + barWidth / 2}" y="${y - 6}" font-size="13" text-anchor="middle">${bar.value.toFixed(bar.value < 10 ? 2 : 0)}</text>`);
    parts.push(`<text x="${x + barWidth / 2}" y="${plotTop + plotHeight + 18}" font-size="12" text-anchor="middle">${escape(bar.label)}</text>`);
  });
  parts.push(`<text x="${x0 + WIDTH / 2}" y="${HEIGHT - 20}" font-size="12" text-anchor="middle" fill="#555">${escape(panel.unit)}</text>`);
  return parts.join('');
}

/** One PNG: panels of `panelWidth` side by side under a title (shared by every bench chart). */
export async function renderPage(title: string, panelWidth: number, panelHeight: number, panelSvgs: string[]): Promise<Buffer> {
  const width = panelWidth * panelSvgs.length;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${panelHeight + 30}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/><g transform="translate(0,30)">${panelSvgs.join('')}</g>
<text x="${width / 2}" y="22" font-size="14" text-anchor="middle" fill="#333">${escape(title)}</text></svg>`;
  return sharp(Buffer.from(svg)).png().toBuffer();
}

export function renderChart(title: string, panels: Panel[]): Promise<Buffer> {
  return renderPage(title, WIDTH, HEIGHT, panels.map((p, i) => panelSvg(p, i * WIDTH)));
}
