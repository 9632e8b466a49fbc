// onnxruntime (Node) vs PyTorch on an exported LLaVA-layout folder (export_joint.py).
//
// usage: node onnx_parity.mjs MODEL_DIR PARITY_JSON
//
// Runs every case of PARITY_JSON (written by export_joint.py --parity) through the four
// ONNX files with a plain greedy loop at batch 1 and a KV cache, exactly the feeds
// transformers.js gives them (vlm-layout-llava.md 4.4), and records under
// "pytorch_vs_onnxruntime" whether the greedy ids equal PyTorch's and the largest absolute
// difference of the logits over every greedy step; also that the attention-variant decoder
// gives the same logits and that its decoder_attentions rows sum to 1. Exits 1 on any
// token mismatch. It is also the reference for the feeds Iris's engine has to build.
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import ort from 'onnxruntime-node';

const [dir, parityPath] = process.argv.slice(2);
if (!dir || !parityPath) {
  console.error('usage: node onnx_parity.mjs MODEL_DIR PARITY_JSON');
  process.exit(2);
}
const parity = JSON.parse(readFileSync(parityPath, 'utf8'));
const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
const pre = JSON.parse(readFileSync(join(dir, 'preprocessor_config.json'), 'utf8'));
const text = config.text_config;
const L = text.num_hidden_layers;
const KV = text.num_key_value_heads;
const HD = text.head_dim;
const D = text.hidden_size;
const S = parity.image_size;

const opts = { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential' };
const load = (name) => ort.InferenceSession.create(join(dir, 'onnx', name), opts);
const [vision, embed, decoder, decoderAttn] = await Promise.all(
  ['vision_encoder.onnx', 'embed_tokens.onnx', 'decoder_model_merged.onnx', 'decoder_with_attentions_model_merged.onnx'].map(load));

const i64 = (values, dims) => new ort.Tensor('int64', BigInt64Array.from(values, (v) => BigInt(v)), dims);

/** HWC uint8 at the input size -> [1, 3, S, S] float32: fround(x / 255), then (x - mean) / std. */
function pixelValues(b64) {
  const hwc = Buffer.from(b64, 'base64');
  const out = new Float32Array(3 * S * S);
  for (let c = 0; c < 3; c++) {
    for (let p = 0; p < S * S; p++) {
      const x = Math.fround(hwc[p * 3 + c] * pre.rescale_factor);
      out[c * S * S + p] = Math.fround(Math.fround(x - pre.image_mean[c]) / pre.image_std[c]);
    }
  }
  return new ort.Tensor('float32', out, [1, 3, S, S]);
}

/** Greedy at batch 1: returns ids (EOS included when it stops) and each step's last-position logits. */
async function greedy(session, c, withAttentions) {
  const { image_features } = await vision.run({ pixel_values: pixelValues(c.image_uint8_hwc) });
  const ids = c.input_ids;
  const { inputs_embeds } = await embed.run({ input_ids: i64(ids, [1, ids.length]) });
  const x = new Float32Array(inputs_embeds.data);
  // the LLaVA merge: the k-th <image> row gets image feature row k
  let k = 0;
  for (let t = 0; t < ids.length; t++) {
    if (ids[t] === parity.image_token_id) x.set(image_features.data.subarray(k * D, ++k * D), t * D);
  }
  if (k !== image_features.dims[1]) throw new Error(`tokens: ${k}, features ${image_features.dims[1]}`);
  let feeds = { inputs_embeds: new ort.Tensor('float32', x, [1, ids.length, D]) };
  let past = {};
  for (let i = 0; i < L; i++) {
    for (const kv of ['key', 'value']) past[`past_key_values.${i}.${kv}`] = new ort.Tensor('float32', new Float32Array(0), [1, KV, 0, HD]);
  }
  let length = ids.length; // past + current
  let position = 0;
  const out = [];
  const steps = [];
  let rowSumError = 0;
  for (let step = 0; step < parity.max_new_tokens; step++) {
    const seq = feeds.inputs_embeds.dims[1];
    const result = await session.run({
      ...feeds,
      attention_mask: i64(new Array(length).fill(1), [1, length]),
      position_ids: i64(Array.from({ length: seq }, (_, j) => position + j), [1, seq]),
      ...past,
    });
    const V = result.logits.dims[2];
    const last = Array.from(result.logits.data.subarray((seq - 1) * V, seq * V));
    steps.push(last);
    if (withAttentions) {
      for (let i = 0; i < L; i++) {
        const a = result[`decoder_attentions.${i}`];
        const kvLen = a.dims[3];
        for (let r = 0; r < a.data.length / kvLen; r++) {
          let sum = 0;
          for (let j = 0; j < kvLen; j++) sum += a.data[r * kvLen + j];
          rowSumError = Math.max(rowSumError, Math.abs(sum - 1));
        }
      }
    }
    let best = -1;
    for (let v = 0; v < V; v++) {
      if (parity.suppress_tokens.includes(v)) continue;
      if (best < 0 || last[v] > last[best]) best = v;
    }
    out.push(best);
    if (best === parity.eos_token_id) break;
    past = {};
    for (let i = 0; i < L; i++) {
      for (const kv of ['key', 'value']) past[`past_key_values.${i}.${kv}`] = result[`present.${i}.${kv}`];
    }
    position += seq;
    length += 1;
    const next = await embed.run({ input_ids: i64([best], [1, 1]) });
    feeds = { inputs_embeds: next.inputs_embeds };
  }
  return { ids: out, steps, rowSumError };
}

let maxDiff = 0;
let maxAttnVsPlain = 0;
let rowSumError = 0;
const mismatches = [];
let attnIdsEqual = true;
for (const [n, c] of parity.cases.entries()) {
  const plain = await greedy(decoder, c, false);
  const attn = await greedy(decoderAttn, c, true);
  if (JSON.stringify(plain.ids) !== JSON.stringify(c.greedy_ids)) mismatches.push({ case: n, pytorch: c.greedy_ids, onnxruntime: plain.ids });
  if (JSON.stringify(attn.ids) !== JSON.stringify(plain.ids)) attnIdsEqual = false;
  for (let s = 0; s < Math.min(plain.steps.length, c.step_logits.length); s++) {
    for (let v = 0; v < plain.steps[s].length; v++) {
      maxDiff = Math.max(maxDiff, Math.abs(plain.steps[s][v] - c.step_logits[s][v]));
      if (s < attn.steps.length) maxAttnVsPlain = Math.max(maxAttnVsPlain, Math.abs(plain.steps[s][v] - attn.steps[s][v]));
    }
  }
  rowSumError = Math.max(rowSumError, attn.rowSumError);
}
const version = createRequire(import.meta.url)('onnxruntime-node/package.json').version;
parity.pytorch_vs_onnxruntime = {
  runtime: `onnxruntime-node ${version}, batch 1, KV cache, fp32`,
  cases: parity.cases.length,
  greedy_ids_equal: mismatches.length === 0,
  mismatches,
  max_abs_logits_diff: Number(maxDiff.toPrecision(3)),
  logits_note: 'PyTorch logits are stored rounded to 6 decimals',
  attentions_variant: { greedy_ids_equal: attnIdsEqual, max_abs_logits_diff_vs_plain: maxAttnVsPlain,
    max_abs_attention_row_sum_error: Number(rowSumError.toPrecision(3)) },
};
writeFileSync(parityPath, JSON.stringify(parity));
console.log(JSON.stringify(parity.pytorch_vs_onnxruntime));
if (mismatches.length || !attnIdsEqual) process.exit(1);
