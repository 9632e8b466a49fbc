// Short value names for a rewritten model. PyTorch's exporter names values after module
// paths (`/decoder/blocks.0/self_attn/q/MatMul_output_0`) and the q8 kernel adds ~25
// derived names per matrix multiply, so in a small int8 model the names weigh ~10 % of
// the file. Values keep their meaning only through the graph's edges, so every value
// that is not a model input or output gets a short name (the same one everywhere,
// subgraphs included, so outer-scope references still resolve) and nodes lose their
// optional names. The model's interface (what Iris and transformers.js feed and fetch)
// is unchanged.
import { walkGraphs } from './graph.ts';
import type { OnnxModel } from './onnx-proto.ts';

export interface CompactStats {
  renamedValues: number;
}

export function compactNames(model: OnnxModel): CompactStats {
  const kept = new Set([...model.graph.inputs, ...model.graph.outputs].map((v) => v.name));
  const renamed = new Map<string, string>();
  let next = 0;
  const rename = (name: string): string => {
    if (name === '' || kept.has(name)) return name; // '' is an omitted optional input
    let short = renamed.get(name);
    if (short === undefined) {
      do short = `v${(next++).toString(36)}`;
      while (kept.has(short));
      renamed.set(name, short);
    }
    return short;
  };
  walkGraphs(model.graph, (graph, _scope) => {
    for (const t of graph.initializers) t.name = rename(t.name);
    for (const v of [...graph.inputs, ...graph.outputs, ...graph.valueInfo]) v.name = rename(v.name);
    for (const node of graph.nodes) {
      node.name = '';
      node.inputs = node.inputs.map(rename);
      node.outputs = node.outputs.map(rename);
    }
  });
  return { renamedValues: renamed.size };
}
