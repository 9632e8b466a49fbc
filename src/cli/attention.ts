// `--attention` on the command line: for caption/ask/generate, one overlay PNG per token
// and a contact sheet of them all (labelled with the tokens) in the folder given; for
// eval, the pointing game's table.
import { mkdir, writeFile } from 'node:fs/promises';
import { ATTENTION_FILE, readModelFolder } from '../model/folder.ts';
import { basename, extname, join } from 'node:path';
import { IrisError, type GenerationResult, type Generator } from '../contract/types.ts';
import { contactSheet, renderOverlay } from '../../vision/heatmap.ts';
import { formatPointing, pointingGame } from './eval-attention.ts';

const PANEL_WIDTH = 160;

/** Writes `<image>-<i>-<token>.png` per token and `<image>-sheet.png`; returns the paths. */
export async function writeAttention(outDir: string, imagePath: string, image: Uint8Array, result: GenerationResult): Promise<string[]> {
  if (!outDir) throw new IrisError('INVALID_OPTIONS', '--attention needs a folder to write the overlays into');
  await mkdir(outDir, { recursive: true });
  const stem = basename(imagePath, extname(imagePath));
  const paths: string[] = [];
  const panels: { png: Buffer; label: string }[] = [];
  for (const [i, token] of result.tokens.entries()) {
    if (!token.attention) continue;
    const png = await renderOverlay(image, token.attention);
    const path = join(outDir, `${stem}-${String(i).padStart(2, '0')}-${token.text.replace(/[^\w-]+/g, '_')}.png`);
    await writeFile(path, png);
    paths.push(path);
    panels.push({ png: await renderOverlay(image, token.attention, { width: PANEL_WIDTH }), label: token.text });
  }
  if (panels.length > 0) {
    const sheet = join(outDir, `${stem}-sheet.png`);
    await writeFile(sheet, await contactSheet(panels));
    paths.push(sheet);
  }
  return paths;
}

/**
 * The pointing game on a labelled folder with the model's current map marked; with
 * `isModelUpdated`, the best aggregation and the table behind it go into the model's
 * attention.json, which the engine reads at load.
 */
export async function runPointingGame(generator: Generator, dir: string | undefined, modelDir: string, isJson: boolean, isModelUpdated: boolean): Promise<number> {
  if (!dir) throw new IrisError('INVALID_OPTIONS', 'eval --attention needs a labelled folder: iris eval <dir> --attention');
  const folder = await readModelFolder(modelDir);
  const report = await pointingGame(generator, dir, folder.attentionAggregation);
  console.log(isJson ? JSON.stringify(report) : formatPointing(report));
  if (isModelUpdated) {
    if (report.scenes === 0) throw new IrisError('INVALID_OPTIONS', `no caption of ${dir} was correct: the pointing game has nothing to choose a map by, so ${ATTENTION_FILE} was not written`);
    const path = join(folder.dir, ATTENTION_FILE);
    const { bestAggregation, variant, scenes, words, rates } = report;
    const chosenBy = 'iris eval --attention --update-model: the aggregation whose lowest hit rate over color, shape and size words is highest';
    await writeFile(path, `${JSON.stringify({ aggregation: bestAggregation, chosenBy, variant, scenes, words, rates }, null, 2)}\n`);
    console.error(`wrote ${path} (aggregation ${bestAggregation})`);
  }
  return 0;
}
