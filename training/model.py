"""The shapes-world vision-language model.

Encoder: a ViT with a convolutional stem (early convolutions make small ViTs train fast):
conv stem -> 8x8 patch grid -> transformer blocks -> projection into the decoder's
embedding space. Decoder: pre-LN transformer blocks with causal self-attention over the
text and cross-attention over the projected patch embeddings; the LM head is tied to the
token embedding.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

NEG = -1e4  # additive mask value, safe in fp16


@dataclass
class ModelConfig:
    vocab_size: int
    image_size: int = 64
    stem_channels: int = 32
    enc_dim: int = 128
    enc_layers: int = 2
    enc_heads: int = 4
    dec_dim: int = 128
    dec_layers: int = 3
    dec_heads: int = 4
    ffn_mult: int = 4
    max_positions: int = 64

    @property
    def grid(self) -> int:
        return self.image_size // 8

    @property
    def num_patches(self) -> int:
        return self.grid * self.grid

    def to_dict(self) -> dict:
        return asdict(self)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, kv_dim: int | None = None):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(kv_dim or dim, dim)
        self.v = nn.Linear(kv_dim or dim, dim)
        self.o = nn.Linear(dim, dim)

    def split(self, x: torch.Tensor) -> torch.Tensor:
        # [b, n, dim] -> [b, heads, n, head_dim]
        b, n, _ = x.shape
        return x.view(b, n, self.heads, self.head_dim).transpose(1, 2)

    def kv(self, x: torch.Tensor):
        return self.split(self.k(x)), self.split(self.v(x))

    def attend(self, q, k, v, bias=None):
        # q [b, h, s, d], k/v [b, h, t, d], bias broadcast to [b, h, s, t]
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim)
        if bias is not None:
            scores = scores + bias
        probs = torch.softmax(scores, dim=-1)
        out = torch.matmul(probs, v)
        b, h, s, d = out.shape
        return self.o(out.transpose(1, 2).reshape(b, s, h * d)), probs


def sincos_2d(grid: int, dim: int) -> torch.Tensor:
    """[grid*grid, dim]: the first half of the channels encodes x, the second half y."""
    quarter = dim // 4
    freqs = 1.0 / (100.0 ** (torch.arange(quarter, dtype=torch.float32) / quarter))
    coords = torch.arange(grid, dtype=torch.float32)
    ys, xs = torch.meshgrid(coords, coords, indexing="ij")
    def enc(v):
        a = v.reshape(-1, 1) * freqs
        return torch.cat([a.sin(), a.cos()], dim=1)
    return torch.cat([enc(xs), enc(ys)], dim=1)


class EncoderBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mult: int):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.ffn = nn.Sequential(nn.Linear(dim, dim * mult), nn.GELU(), nn.Linear(dim * mult, dim))

    def forward(self, x):
        h = self.ln1(x)
        k, v = self.attn.kv(h)
        x = x + self.attn.attend(self.attn.split(self.attn.q(h)), k, v)[0]
        return x + self.ffn(self.ln2(x))


def take_tokens(nxt: torch.Tensor, eos: int, out: list[list[int]], done: torch.Tensor, on_live=None) -> bool:
    """One greedy step's bookkeeping: each row not yet done appends its token, or is done at
    EOS (`on_live(i)` first, for rows still running); True once every row is done."""
    for i in range(len(out)):
        if not done[i]:
            if on_live:
                on_live(i)
            if nxt[i].item() == eos:
                done[i] = True
            else:
                out[i].append(nxt[i].item())
    return bool(done.all())


class VisionEncoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        c = cfg.stem_channels
        self.stem = nn.Sequential(  # stride 8 in all: one embedding per 8x8 patch
            nn.Conv2d(3, c, 3, 1, 1), nn.GELU(),
            nn.Conv2d(c, 2 * c, 3, 2, 1), nn.GELU(),
            nn.Conv2d(2 * c, 2 * c, 3, 2, 1), nn.GELU(),
            nn.Conv2d(2 * c, cfg.enc_dim, 2, 2),
        )
        # Captions order objects left to right or top to bottom, so where a patch is
        # matters from the first step: start from a 2D sine-cosine table at full scale
        # (a small random start takes thousands of steps to carry position).
        self.pos = nn.Parameter(sincos_2d(cfg.grid, cfg.enc_dim).unsqueeze(0))
        self.blocks = nn.ModuleList(EncoderBlock(cfg.enc_dim, cfg.enc_heads, cfg.ffn_mult) for _ in range(cfg.enc_layers))
        self.ln = nn.LayerNorm(cfg.enc_dim)
        self.proj = nn.Linear(cfg.enc_dim, cfg.dec_dim)

    def features(self, pixel_values):
        # pixel_values [b, 3, H, W] -> [b, patches, enc_dim]
        x = self.stem(pixel_values).flatten(2).transpose(1, 2) + self.pos
        for blk in self.blocks:
            x = blk(x)
        return self.ln(x)

    def forward(self, pixel_values):
        # -> [b, patches, dec_dim]: patch embeddings in the decoder's embedding space
        return self.proj(self.features(pixel_values))


class DecoderBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mult: int):
        super().__init__()
        self.ln1, self.ln2, self.ln3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.self_attn = Attention(dim, heads)
        self.cross_attn = Attention(dim, heads)
        self.ffn = nn.Sequential(nn.Linear(dim, dim * mult), nn.GELU(), nn.Linear(dim * mult, dim))

    def forward(self, x, bias, past_k, past_v, cross_k, cross_v):
        h = self.ln1(x)
        k, v = self.self_attn.kv(h)
        if past_k is not None:
            k, v = torch.cat([past_k, k], dim=2), torch.cat([past_v, v], dim=2)
        x = x + self.self_attn.attend(self.self_attn.split(self.self_attn.q(h)), k, v, bias)[0]
        q = self.cross_attn.split(self.cross_attn.q(self.ln2(x)))
        out, probs = self.cross_attn.attend(q, cross_k, cross_v)
        x = x + out
        return x + self.ffn(self.ln3(x)), k, v, probs


class TextDecoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.dec_dim)
        self.pos = nn.Embedding(cfg.max_positions, cfg.dec_dim)
        self.blocks = nn.ModuleList(DecoderBlock(cfg.dec_dim, cfg.dec_heads, cfg.ffn_mult) for _ in range(cfg.dec_layers))
        self.ln = nn.LayerNorm(cfg.dec_dim)
        nn.init.normal_(self.embed.weight, std=0.02)
        nn.init.normal_(self.pos.weight, std=0.02)

    def cross_kv(self, enc):
        return [blk.cross_attn.kv(enc) for blk in self.blocks]

    def step(self, input_ids, attention_mask, position_ids, past, cross):
        """One decoder call. past: per layer (k, v) [b, h, past, d] or None; cross: per
        layer (k, v) [b, h, patches, d]. attention_mask [b, past+seq] marks real tokens.
        Returns logits [b, seq, vocab], presents, cross-attention probs per layer."""
        hidden, presents, attns = self.step_hidden(input_ids, attention_mask, position_ids, past, cross)
        return self.lm_head(hidden), presents, attns

    def lm_head(self, hidden):
        """Logits from the final hidden state (tied to the token embedding)."""
        return F.linear(hidden, self.embed.weight)

    def step_hidden(self, input_ids, attention_mask, position_ids, past, cross):
        """`step` up to the final layer norm: the hidden state [b, seq, dim] the LM head
        (and Medusa heads, medusa.py) read, presents and cross-attention probs."""
        seq = input_ids.shape[1]
        total = attention_mask.shape[1]
        past_len = total - seq
        q_pos = torch.arange(seq, device=input_ids.device).unsqueeze(1) + past_len
        k_pos = torch.arange(total, device=input_ids.device).unsqueeze(0)
        allowed = (k_pos <= q_pos).unsqueeze(0) & attention_mask.bool().unsqueeze(1)  # [b, seq, total]
        bias = (~allowed).to(torch.float32).unsqueeze(1) * NEG  # [b, 1, seq, total]
        x = self.embed(input_ids) + self.pos(position_ids)
        presents, attns = [], []
        for i, blk in enumerate(self.blocks):
            pk, pv = past[i] if past is not None else (None, None)
            x, k, v, probs = blk(x, bias, pk, pv, cross[i][0], cross[i][1])
            presents.append((k, v))
            attns.append(probs)
        return self.ln(x), presents, attns


class VisionLanguageModel(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = VisionEncoder(cfg)
        self.decoder = TextDecoder(cfg)

    def forward(self, pixel_values, input_ids, image_index=None):
        """Teacher forcing. image_index maps each text row to its image row.
        Returns the logits and the encoder's patch features (for auxiliary losses)."""
        feats = self.encoder.features(pixel_values)
        cross = self.decoder.cross_kv(self.encoder.proj(feats))
        if image_index is not None:
            cross = [(k[image_index], v[image_index]) for k, v in cross]
        b, s = input_ids.shape
        mask = torch.ones(b, s, dtype=torch.long)
        pos = torch.arange(s).unsqueeze(0).expand(b, s)
        return self.decoder.step(input_ids, mask, pos, None, cross)[0], feats

    @torch.no_grad()
    def greedy(self, pixel_values, prompts: list[list[int]], eos: int, max_new: int = 24) -> list[list[int]]:
        """Batched greedy decoding with left padding and a KV cache (reference decoder)."""
        enc = self.encoder(pixel_values)
        cross = self.decoder.cross_kv(enc)
        b = len(prompts)
        width = max(len(p) for p in prompts)
        ids = torch.zeros(b, width, dtype=torch.long)
        mask = torch.zeros(b, width, dtype=torch.long)
        for i, p in enumerate(prompts):
            ids[i, width - len(p):] = torch.tensor(p)
            mask[i, width - len(p):] = 1
        pos = (mask.cumsum(1) - 1).clamp(min=0)
        past = None
        out = [[] for _ in range(b)]
        done = torch.zeros(b, dtype=torch.bool)
        for _ in range(max_new):
            logits, past, _ = self.decoder.step(ids, mask, pos, past, cross)
            nxt = logits[:, -1].argmax(-1)
            if take_tokens(nxt, eos, out, done):
                break
            ids = nxt.unsqueeze(1)
            mask = torch.cat([mask, torch.ones(b, 1, dtype=torch.long)], 1)
            pos = pos[:, -1:] + 1
        return out
