import { readFileSync } from 'node:fs';
import { decodeModel } from '../src/quantize/onnx-proto.ts';
for (const f of process.argv.slice(2)) {
  const m = decodeModel(new Uint8Array(readFileSync(f)));
  const g = m.graph;
  for (const o of g.outputs.filter((o) => o.name.startsWith('present'))) {
    const n = g.nodes.find((n) => n.outputs.includes(o.name));
    console.log(f.split('/').slice(-3).join('/'), o.name, n?.opType, n?.inputs, n?.attributes.map((a) => `${a.name}=${a.i}`));
  }
}
