// Quantized copies of the tiny fixtures in a temporary folder (never in assets/), and
// small readers over the rewritten graphs.
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { walkGraphs, type Scope } from '../../src/quantize/graph.ts';
import { decodeModel, type OnnxGraph, type OnnxModel } from '../../src/quantize/onnx-proto.ts';
import { addDecodeGraphs, quantizeFolder, type VariantReport } from '../../src/quantize/quantize-folder.ts';
import type { Q8Options } from '../../src/quantize/q8.ts';

export interface QuantizedCopy {
  dir: string;
  reports: VariantReport[];
  remove: () => Promise<void>;
}

export async function quantizedCopy(fixture: string, q8?: Q8Options): Promise<QuantizedCopy> {
  const root = await mkdtemp(join(tmpdir(), 'iris-quantize-'));
  const dir = join(root, 'model');
  await cp(fixture, dir, { recursive: true });
  await addDecodeGraphs(dir); // as iris quantize does: the fixtures' variants then include the decode-only graph
  const reports = await quantizeFolder(dir, { dtypes: ['q8', 'fp16'], q8 });
  return { dir, reports, remove: () => rm(root, { recursive: true, force: true }) };
}

export async function readModel(path: string): Promise<OnnxModel> {
  return decodeModel(new Uint8Array(await readFile(path)));
}

/** Every node of the model, nested graphs included, with the initializers it can see. */
export function allNodes(model: OnnxModel): { node: OnnxGraph['nodes'][number]; graph: OnnxGraph; scope: Scope }[] {
  const out: { node: OnnxGraph['nodes'][number]; graph: OnnxGraph; scope: Scope }[] = [];
  walkGraphs(model.graph, (graph, scope) => graph.nodes.forEach((node) => out.push({ node, graph, scope })));
  return out;
}
