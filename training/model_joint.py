"""The joint-embedding shapes-world model (`shapes-joint`, the LLaVA layout).

One causal decoder reads a single sequence

    [image tokens (one per 16x16 px: 2x2 patches)] [task prompt: <s> ... ] [text]

with causal self-attention over all of it and no cross-attention:
- vision tower: model.py's ViT with the convolutional stem (reused, not forked), its
  per-patch features merged 2x2 (concatenated: 64 patches -> 16 image tokens, half the
  training step time of 64 tokens) and projected by a LLaVA-style MLP (Linear, GELU,
  Linear) to the decoder's width; each image token replaces one `<image>` embedding;
- decoder: Llama-style (RoPE from position_ids, RMSNorm, SwiGLU, grouped-query
  attention, LM head tied to the token embedding). transformers.js names the KV cache
  from `text_config` (model_type "llama"), and RoPE needs no position table, so the
  decoder is position-agnostic up to any prompt length (vlm-layout-llava.md section 4
  proved exactly this decoder type, with GQA).

The task prompts are the encoder-decoder model's (vocab.py), after the image tokens:
caption `<s>`, answer `<s> <question> ... <answer>`, continuation `<s> prefix...`.
The vocabulary is vocab.py's plus one token, `<image>`, appended at the end.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

import vocab
from model import ModelConfig, VisionEncoder, take_tokens

NEG = -1e4  # additive mask value, safe in fp16/bf16
IMAGE_TOKEN = "<image>"
TOKENS = vocab.TOKENS + [IMAGE_TOKEN]
IMAGE_ID = len(vocab.TOKENS)


@dataclass
class JointConfig:
    vocab_size: int = len(TOKENS)
    image_token_id: int = IMAGE_ID
    image_size: int = 64
    stem_channels: int = 32
    enc_dim: int = 128
    enc_layers: int = 2
    enc_heads: int = 4
    dim: int = 128
    layers: int = 4
    heads: int = 4
    kv_heads: int = 2
    ffn_dim: int = 384
    rope_theta: float = 10000.0
    rms_eps: float = 1e-6
    pool: int = 1  # image tokens merge pool x pool neighbouring patches (concatenated, then projected)
    max_positions: int = 160  # image tokens + the longest prompt + generated tokens

    @property
    def grid(self) -> int:
        return self.image_size // 8

    @property
    def token_grid(self) -> int:
        return self.grid // self.pool

    @property
    def num_image_tokens(self) -> int:
        return self.token_grid * self.token_grid

    @property
    def token_patch_size(self) -> int:
        """Pixels per image token along each side (processor_config.json's patch_size)."""
        return 8 * self.pool

    @property
    def head_dim(self) -> int:
        return self.dim // self.heads

    def vision_config(self) -> ModelConfig:
        """model.py's config for its VisionEncoder (only the encoder fields are used)."""
        return ModelConfig(vocab_size=self.vocab_size, image_size=self.image_size, stem_channels=self.stem_channels,
                           enc_dim=self.enc_dim, enc_layers=self.enc_layers, enc_heads=self.enc_heads, dec_dim=self.dim)

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS = {
    # the shipped size (see training/README.md for the measured step time)
    # 16 image tokens (2x2 patches each): 64 cost about twice the step time (0.39 vs 0.18 s)
    "base": dict(stem_channels=32, enc_dim=128, enc_layers=2, enc_heads=4, dim=128, layers=4, heads=4, kv_heads=2,
                 ffn_dim=384, pool=2),
    # fixtures and smoke tests
    "tiny": dict(stem_channels=8, enc_dim=32, enc_layers=1, enc_heads=2, dim=32, layers=2, heads=2, kv_heads=1,
                 ffn_dim=64, pool=2),
}


def make_config(preset: str) -> JointConfig:
    return JointConfig(**PRESETS[preset])


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype) * self.weight


def rope(position_ids: torch.Tensor, head_dim: int, theta: float):
    """cos, sin [b, 1, s, head_dim] for the given positions (Llama's rotate-half form)."""
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    freqs = position_ids.float().unsqueeze(-1) * inv  # [b, s, hd/2]
    emb = torch.cat([freqs, freqs], dim=-1).unsqueeze(1)
    return emb.cos(), emb.sin()


def rotate(x, cos, sin):
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return x * cos + torch.cat([-x2, x1], dim=-1) * sin


class SelfAttention(nn.Module):
    def __init__(self, cfg: JointConfig):
        super().__init__()
        self.h, self.kv, self.hd = cfg.heads, cfg.kv_heads, cfg.head_dim
        self.q = nn.Linear(cfg.dim, cfg.heads * cfg.head_dim, bias=False)
        self.k = nn.Linear(cfg.dim, cfg.kv_heads * cfg.head_dim, bias=False)
        self.v = nn.Linear(cfg.dim, cfg.kv_heads * cfg.head_dim, bias=False)
        self.o = nn.Linear(cfg.heads * cfg.head_dim, cfg.dim, bias=False)

    def forward(self, x, cos, sin, bias, past_k=None, past_v=None):
        b, s, _ = x.shape
        q = rotate(self.q(x).view(b, s, self.h, self.hd).transpose(1, 2), cos, sin)
        k = rotate(self.k(x).view(b, s, self.kv, self.hd).transpose(1, 2), cos, sin)
        v = self.v(x).view(b, s, self.kv, self.hd).transpose(1, 2)
        if past_k is not None:
            k, v = torch.cat([past_k, k], dim=2), torch.cat([past_v, v], dim=2)
        present = (k, v)
        if self.kv != self.h:
            # GQA: expand + reshape (repeat_interleave exports a graph that breaks at batch 1: trap 1)
            rep = self.h // self.kv
            k = k[:, :, None].expand(-1, -1, rep, -1, -1).reshape(b, self.h, -1, self.hd)
            v = v[:, :, None].expand(-1, -1, rep, -1, -1).reshape(b, self.h, -1, self.hd)
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.hd) + bias
        probs = torch.softmax(scores.float(), dim=-1).to(v.dtype)
        out = torch.matmul(probs, v).transpose(1, 2).reshape(b, s, self.h * self.hd)
        return self.o(out), present, probs


class Block(nn.Module):
    def __init__(self, cfg: JointConfig):
        super().__init__()
        self.ln1, self.ln2 = RMSNorm(cfg.dim, cfg.rms_eps), RMSNorm(cfg.dim, cfg.rms_eps)
        self.attn = SelfAttention(cfg)
        self.gate = nn.Linear(cfg.dim, cfg.ffn_dim, bias=False)
        self.up = nn.Linear(cfg.dim, cfg.ffn_dim, bias=False)
        self.down = nn.Linear(cfg.ffn_dim, cfg.dim, bias=False)

    def forward(self, x, cos, sin, bias, past_k=None, past_v=None):
        a, present, probs = self.attn(self.ln1(x), cos, sin, bias, past_k, past_v)
        x = x + a
        h = self.ln2(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h)), present, probs


class JointDecoder(nn.Module):
    def __init__(self, cfg: JointConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.layers))
        self.norm = RMSNorm(cfg.dim, cfg.rms_eps)
        nn.init.normal_(self.embed.weight, std=0.02)

    def run(self, x, bias, position_ids, past=None):
        """x [b, s, dim] input embeddings; bias [b, 1, s, past+s] additive; position_ids [b, s].
        Returns logits [b, s, vocab], per-layer presents (k, v) [b, kv_heads, past+s, hd] and
        per-layer attention probabilities [b, heads, s, past+s]."""
        cos, sin = rope(position_ids, self.cfg.head_dim, self.cfg.rope_theta)
        presents, attns = [], []
        for i, blk in enumerate(self.blocks):
            pk, pv = past[i] if past is not None else (None, None)
            x, present, probs = blk(x, cos, sin, bias, pk, pv)
            presents.append(present)
            attns.append(probs)
        return F.linear(self.norm(x), self.embed.weight), presents, attns

    def step(self, inputs_embeds, attention_mask, position_ids, past=None):
        """One cached decoder call, exactly as exported: attention_mask [b, past+s] marks real
        tokens (0 for left padding); the causal rule comes from the shapes."""
        seq = inputs_embeds.shape[1]
        total = attention_mask.shape[1]
        q_pos = torch.arange(seq, device=inputs_embeds.device).unsqueeze(1) + (total - seq)
        k_pos = torch.arange(total, device=inputs_embeds.device).unsqueeze(0)
        allowed = (k_pos <= q_pos).unsqueeze(0) & attention_mask.bool().unsqueeze(1)  # [b, s, total]
        bias = (~allowed).to(inputs_embeds.dtype).unsqueeze(1) * NEG
        return self.run(inputs_embeds, bias, position_ids, past)


class JointVLM(nn.Module):
    def __init__(self, cfg: JointConfig):
        super().__init__()
        self.cfg = cfg
        self.vision = VisionEncoder(cfg.vision_config())
        # LLaVA's projector, inside the vision graph on export
        self.vision.proj = nn.Sequential(nn.Linear(cfg.enc_dim * cfg.pool * cfg.pool, cfg.dim), nn.GELU(),
                                         nn.Linear(cfg.dim, cfg.dim))
        self.decoder = JointDecoder(cfg)

    def project(self, feats):
        """Patch features [b, grid*grid, enc_dim] -> image tokens [b, num_image_tokens, dim]:
        each token concatenates a pool x pool block of patches (row-major blocks, row-major
        inside a block), then the projector maps it to the decoder's width."""
        p = self.cfg.pool
        if p > 1:
            g, c, t = self.cfg.grid, feats.shape[-1], self.cfg.token_grid
            feats = feats.reshape(-1, t, p, t, p, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, t * t, p * p * c)
        return self.vision.proj(feats)

    def image_features(self, pixel_values):
        """[b, 3, H, W] -> [b, num_image_tokens, dim], tokens in row-major order."""
        return self.project(self.vision.features(pixel_values))

    def merge(self, input_ids, features):
        """Token embeddings with the k-th `<image>` row replaced by feature row k (a masked
        scatter, as transformers.js's LLaVA merge does)."""
        emb = self.decoder.embed(input_ids)
        is_image = input_ids == self.cfg.image_token_id
        emb = emb.clone()
        emb[is_image] = features.reshape(-1, features.shape[-1]).to(emb.dtype)
        return emb

    def forward(self, pixel_values, ids, bias, position_ids):
        """Teacher forcing over packed rows (see train_joint.pack): ids [b, T] start with the
        image tokens. Returns logits [b, T, vocab] and the encoder's patch features."""
        feats = self.vision.features(pixel_values)
        n = self.cfg.num_image_tokens
        x = torch.cat([self.project(feats), self.decoder.embed(ids[:, n:])], dim=1)
        return self.decoder.run(x, bias, position_ids)[0], feats

    def suppress_mask(self) -> torch.Tensor:
        m = torch.zeros(self.cfg.vocab_size, dtype=torch.bool)
        m[self.cfg.image_token_id] = True
        return m

    def full_prompt(self, prompt: list[int]) -> list[int]:
        return [self.cfg.image_token_id] * self.cfg.num_image_tokens + list(prompt)

    @torch.no_grad()
    def greedy(self, pixel_values, prompts: list[list[int]], eos: int, max_new: int = 24,
               return_logits: bool = False):
        """Batched greedy decoding with left padding and a KV cache (the reference decoder).
        prompts are the task prompts without the image tokens (vocab.caption_prompt() ...);
        the image tokens go first. With return_logits, also each row's logits per step."""
        feats = self.image_features(pixel_values)
        b = len(prompts)
        full = [self.full_prompt(p) for p in prompts]
        width = max(len(p) for p in full)
        ids = torch.full((b, width), vocab.PAD_ID, dtype=torch.long)
        mask = torch.zeros(b, width, dtype=torch.long)
        for i, p in enumerate(full):
            ids[i, width - len(p):] = torch.tensor(p)
            mask[i, width - len(p):] = 1
        pos = mask.cumsum(1) - 1
        pos = pos.masked_fill(mask == 0, 1)
        x = self.merge(ids, feats)
        past = None
        out = [[] for _ in range(b)]
        logit_rows = [[] for _ in range(b)]
        done = torch.zeros(b, dtype=torch.bool)
        for _ in range(max_new):
            logits, past, _ = self.decoder.step(x, mask, pos, past)
            last = logits[:, -1]
            # generation_config.json's suppress_tokens: never emit <image>
            nxt = last.masked_fill(self.suppress_mask(), float("-inf")).argmax(-1)
            if take_tokens(nxt, eos, out, done, on_live=lambda i: logit_rows[i].append(last[i].tolist())):
                break
            x = self.decoder.embed(nxt.unsqueeze(1))
            mask = torch.cat([mask, torch.ones(b, 1, dtype=torch.long)], 1)
            pos = pos[:, -1:] + 1
        return (out, logit_rows) if return_logits else out


def load(path: str) -> JointVLM:
    ckpt = torch.load(path, map_location="cpu")
    model = JointVLM(JointConfig(**ckpt["config"]))
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()
