// Line charts for the load benchmark (one series per target, concurrency on a log2 x axis),
// drawn as SVG and rendered to PNG with sharp.
import { renderPage } from './chart.ts';

export interface Series {
  label: string;
  color: string;
  points: { x: number; y: number }[];
}

export interface LinePanel {
  title: string;
  unit: string;
  series: Series[];
}

const W = 460;
const H = 320;
const PAD = { left: 60, right: 20, top: 50, bottom: 70 };

function panelSvg(panel: LinePanel, x0: number): string {
  const xs = [...new Set(panel.series.flatMap((s) => s.points.map((p) => p.x)))].sort((a, b) => a - b);
  const yMax = Math.max(...panel.series.flatMap((s) => s.points.map((p) => p.y)).filter(Number.isFinite), 1e-9) * 1.1;
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const px = (x: number): number => x0 + PAD.left + (xs.length < 2 ? plotW / 2 : (xs.indexOf(x) / (xs.length - 1)) * plotW);
  const py = (y: number): number => PAD.top + plotH - (y / yMax) * plotH;
  const parts = [
    `<text x="${x0 + W / 2}" y="24" font-size="15" text-anchor="middle" font-weight="bold">${panel.title}</text>`,
    `<line x1="${x0 + PAD.left}" y1="${PAD.top + plotH}" x2="${x0 + W - PAD.right}" y2="${PAD.top + plotH}" stroke="#999"/>`,
    `<line x1="${x0 + PAD.left}" y1="${PAD.top}" x2="${x0 + PAD.left}" y2="${PAD.top + plotH}" stroke="#999"/>`,
    `<text x="${x0 + PAD.left - 6}" y="${PAD.top + 4}" font-size="11" text-anchor="end">${yMax.toFixed(yMax < 10 ? 1 : 0)}</text>`,
    `<text x="${x0 + W / 2}" y="${H - 12}" font-size="12" text-anchor="middle" fill="#555">${panel.unit}</text>`,
  ];
  for (const x of xs) parts.push(`<text x="${px(x)}" y="${PAD.top + plotH + 16}" font-size="11" text-anchor="middle">${x}</text>`);
  panel.series.forEach((s, i) => {
    const pts = s.points.filter((p) => Number.isFinite(p.y));
    parts.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${pts.map((p) => `${px(p.x)},${py(p.y)}`).join(' ')}"/>`);
    for (const p of pts) parts.push(`<circle cx="${px(p.x)}" cy="${py(p.y)}" r="3" fill="${s.color}"/>`);
    parts.push(`<rect x="${x0 + PAD.left + 10}" y="${PAD.top + 4 + i * 16}" width="10" height="10" fill="${s.color}"/><text x="${x0 + PAD.left + 24}" y="${PAD.top + 13 + i * 16}" font-size="11">${s.label}</text>`);
  });
  return parts.join('');
}

export function renderLineChart(title: string, panels: LinePanel[]): Promise<Buffer> {
  return renderPage(title, W, H, panels.map((p, i) => panelSvg(p, i * W)));
}
