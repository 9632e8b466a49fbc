"""Rebuilds the PyTorch model from an exported encdec ONNX folder, when its checkpoint is gone.

usage: from_onnx.py --model DIR --out model.pt [--parity [--parity-file FILE]]

The exporter (export.py) keeps most parameter names but folds every nn.Linear weight into
a transposed `onnx::MatMul_*` initializer whose name depends only on the graph. So the map
from initializers to parameters is learned by exporting a model with the same config and
random weights (every value distinct), matching each initializer to the parameter it
equals (as is, or transposed), and applying that map to the folder's initializers.
`--parity` checks the rebuilt model against the parity cases PyTorch recorded at export time
(greedy ids and the first step's logits; default: the folder's parity.json).
"""
from __future__ import annotations

import argparse
import base64
import json
import tempfile

import numpy as np
import onnx
import torch
from onnx import numpy_helper

import data
import export
from model import ModelConfig, VisionLanguageModel

FILES = ("encoder_model.onnx", "decoder_model_merged.onnx")


def config_from_folder(folder: str) -> ModelConfig:
    with open(f"{folder}/config.json") as f:
        c = json.load(f)
    enc, dec = c["encoder"], c["decoder"]
    return ModelConfig(vocab_size=dec["vocab_size"], image_size=enc["image_size"],
                       stem_channels=enc["conv_stem_channels"][0], enc_dim=enc["hidden_size"],
                       enc_layers=enc["num_hidden_layers"], enc_heads=enc["num_attention_heads"],
                       dec_dim=dec["d_model"], dec_layers=dec["decoder_layers"],
                       dec_heads=dec["decoder_attention_heads"], ffn_mult=dec["decoder_ffn_dim"] // dec["d_model"],
                       max_positions=dec["max_position_embeddings"])


def _initializers(path: str) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in onnx.load(path).graph.initializer}


def _export_probe(model: VisionLanguageModel, folder: str) -> None:
    export.export_encoder(model, f"{folder}/{FILES[0]}")
    export.export_encdec_decoder(model, f"{folder}/{FILES[1]}", attentions=False)


def initializer_map(cfg: ModelConfig) -> dict[tuple[str, str], tuple[str, bool]]:
    """(file, initializer) -> (parameter, transposed), learned from a random-weight export."""
    torch.manual_seed(0)
    probe = VisionLanguageModel(cfg).eval()
    with torch.no_grad():
        for p in probe.parameters():
            p.copy_(torch.randn_like(p))  # distinct values everywhere (LayerNorm starts at 1/0)
    state = {k: v.numpy() for k, v in probe.state_dict().items()}
    mapping = {}
    with tempfile.TemporaryDirectory() as tmp:
        _export_probe(probe, tmp)
        for file in FILES:
            for name, arr in _initializers(f"{tmp}/{file}").items():
                hit = next(((p, False) for p, v in state.items() if v.shape == arr.shape and np.array_equal(v, arr)), None) \
                    or next(((p, True) for p, v in state.items() if v.ndim == 2 and v.T.shape == arr.shape and np.array_equal(v.T, arr)), None)
                if hit is not None:
                    mapping[(file, name)] = hit
    missing = set(state) - {p for p, _ in mapping.values()}
    if missing:
        raise ValueError(f"parameters with no initializer in the export: {sorted(missing)}")
    return mapping


def load_folder(folder: str) -> VisionLanguageModel:
    cfg = config_from_folder(folder)
    model = VisionLanguageModel(cfg).eval()
    state = model.state_dict()
    initializers = {file: _initializers(f"{folder}/onnx/{file}") for file in FILES}
    for (file, name), (param, transposed) in initializer_map(cfg).items():
        arr = initializers[file].get(name)
        if arr is None:
            raise ValueError(f"{folder}/onnx/{file} has no initializer {name}: exported by another exporter version?")
        value = torch.from_numpy(np.ascontiguousarray(arr.T if transposed else arr))
        state[param].copy_(value)
    return model


def check_parity(model: VisionLanguageModel, path: str) -> dict:
    with open(path) as f:
        parity = json.load(f)
    worst, same = 0.0, 0
    for case in parity["cases"]:
        s = parity["image_size"]
        arr = np.frombuffer(base64.b64decode(case["image_uint8_hwc"]), dtype=np.uint8).reshape(s, s, 3)
        px = data.preprocess(arr[None])
        ids = model.greedy(px, [case["prompt_ids"]], parity["eos_token_id"], max_new=20)[0]
        want = [t for t in case["greedy_ids"] if t != parity["eos_token_id"]]
        same += ids == want
        logits = export.first_step_logits(model, px, case["prompt_ids"])
        worst = max(worst, float((logits - torch.tensor(case["first_logits"])).abs().max()))
    return {"cases": len(parity["cases"]), "greedy_equal": same, "max_logit_diff": worst}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--parity", action="store_true")
    ap.add_argument("--parity-file", help="default: MODEL/parity.json")
    args = ap.parse_args()
    model = load_folder(args.model)
    torch.save({"config": model.cfg.to_dict(), "state_dict": model.state_dict()}, args.out)
    report = {"checkpoint": args.out}
    if args.parity:
        report["parity"] = check_parity(model, args.parity_file or f"{args.model}/parity.json")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
