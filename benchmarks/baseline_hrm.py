"""An independent, straightforward eager HRM training step (nanoGPT-style), for bench_train.py.

Written from the paper's maths (SPEC 4), not from train/: plain nn.Linear / nn.Embedding modules,
F.scaled_dot_product_attention, a per-tensor Adam-atan2 loop, sign-SGD through unique(), the loss
read back with .item() at log steps as nanoGPT does. bench_train.py checks that one step of it
equals one step of the trainer (same weights, same batch, same random draws) before timing both.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

IGNORE = -100


def rms_norm(x: torch.Tensor, eps: float) -> torch.Tensor:
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)


def rope_tables(head_dim: int, positions: int, theta: float, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    freqs = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    angles = torch.arange(positions, dtype=torch.float64)[:, None] * freqs[None, :]
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos().to(dtype), angles.sin().to(dtype)


def rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos[:, None, :] + rotated * sin[:, None, :]


class Block(nn.Module):
    def __init__(self, hidden: int, heads: int, mlp: int, eps: float):
        super().__init__()
        self.heads, self.eps = heads, eps
        self.qkv = nn.Linear(hidden, 3 * hidden, bias=False)
        self.proj = nn.Linear(hidden, hidden, bias=False)
        self.gate_up = nn.Linear(hidden, 2 * mlp, bias=False)
        self.down = nn.Linear(mlp, hidden, bias=False)

    def forward(self, x: torch.Tensor, rot: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.heads, C // self.heads).unbind(2)
        if rot is not None:
            q, k = rope(q, *rot), rope(k, *rot)
        y = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        x = rms_norm(x + self.proj(y.transpose(1, 2).reshape(B, T, C)), self.eps)
        gate, up = self.gate_up(x).chunk(2, dim=-1)
        return rms_norm(x + self.down(F.silu(gate) * up), self.eps)


@dataclass
class Cfg:
    seq_len: int
    vocab: int
    num_ids: int
    hidden: int
    heads: int
    H_layers: int
    L_layers: int
    H_cycles: int
    L_cycles: int
    mlp: int
    puzzle_dim: int
    rope: bool
    halt_max_steps: int
    explore: float
    eps: float = 1e-5
    theta: float = 10000.0


class HRM(nn.Module):
    def __init__(self, cfg: Cfg):
        super().__init__()
        self.cfg = cfg
        self.puzzle_len = -(-cfg.puzzle_dim // cfg.hidden)
        positions = cfg.seq_len + self.puzzle_len
        self.tok = nn.Embedding(cfg.vocab, cfg.hidden)
        self.pos = None if cfg.rope else nn.Embedding(positions, cfg.hidden)
        self.H = nn.ModuleList([Block(cfg.hidden, cfg.heads, cfg.mlp, cfg.eps) for _ in range(cfg.H_layers)])
        self.L = nn.ModuleList([Block(cfg.hidden, cfg.heads, cfg.mlp, cfg.eps) for _ in range(cfg.L_layers)])
        self.lm_head = nn.Linear(cfg.hidden, cfg.vocab, bias=False)
        self.q_head = nn.Linear(cfg.hidden, 2, bias=True)
        self.register_buffer("H_init", torch.zeros(cfg.hidden))
        self.register_buffer("L_init", torch.zeros(cfg.hidden))
        self.register_buffer("puzzle_table", torch.zeros(cfg.num_ids, max(cfg.puzzle_dim, 1)))
        self.register_buffer("cos", torch.zeros(positions, cfg.hidden // cfg.heads))
        self.register_buffer("sin", torch.zeros(positions, cfg.hidden // cfg.heads))

    def set_rope(self) -> None:
        self.cos, self.sin = rope_tables(self.cfg.hidden // self.cfg.heads, self.cos.shape[0], self.cfg.theta,
                                         self.tok.weight.dtype)

    def embed(self, inputs: torch.Tensor, puzzle_rows: torch.Tensor | None) -> torch.Tensor:
        cfg = self.cfg
        x = self.tok(inputs.long())
        if self.puzzle_len:
            pad = self.puzzle_len * cfg.hidden - puzzle_rows.shape[1]
            x = torch.cat([F.pad(puzzle_rows, (0, pad)).view(-1, self.puzzle_len, cfg.hidden), x], dim=1)
        if self.pos is not None:
            x = (x + self.pos.weight) / math.sqrt(2)
        return math.sqrt(cfg.hidden) * x

    def level(self, blocks: nn.ModuleList, z: torch.Tensor, injection: torch.Tensor, rot) -> torch.Tensor:
        h = z + injection
        for block in blocks:
            h = block(h, rot)
        return h

    def segment(self, z_h, z_l, inputs, puzzle_rows):
        cfg = self.cfg
        rot = (self.cos, self.sin) if cfg.rope else None
        x = self.embed(inputs, puzzle_rows)
        with torch.no_grad():  # all low steps but the last, all high steps but the last
            for i in range(cfg.H_cycles * cfg.L_cycles - 1):
                z_l = self.level(self.L, z_l, z_h + x, rot)
                if (i + 1) % cfg.L_cycles == 0:
                    z_h = self.level(self.H, z_h, z_l, rot)
        z_l = self.level(self.L, z_l, z_h + x, rot)  # the one-step gradient
        z_h = self.level(self.H, z_h, z_l, rot)
        logits = self.lm_head(z_h)[:, self.puzzle_len:]
        q = self.q_head(z_h[:, 0])
        return z_h.detach(), z_l.detach(), logits, q[:, 0], q[:, 1]


def stablemax_xent(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    x = logits.double()
    s = torch.where(x >= 0, x + 1, 1 / (1 - torch.minimum(x, torch.zeros_like(x))))
    logp = torch.log(s / s.sum(-1, keepdim=True))
    mask = labels != IGNORE
    picked = logp.gather(-1, torch.where(mask, labels, 0).unsqueeze(-1)).squeeze(-1)
    return torch.where(mask, -picked, 0)


class Trainer:
    """The whole training step: ACT refill, segment, Q target, loss, backward, optimisers."""

    def __init__(self, model: HRM, batch_size: int, lr: float, puzzle_lr: float, betas, wd: float,
                 puzzle_wd: float, warmup: int, total: int, min_ratio: float, log_interval: int = 10):
        self.model, self.B = model, batch_size
        self.lr, self.puzzle_lr, self.betas, self.wd, self.puzzle_wd = lr, puzzle_lr, betas, wd, puzzle_wd
        self.warmup, self.total, self.min_ratio, self.log_interval = warmup, total, min_ratio, log_interval
        self.params = [p for p in model.parameters()]
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]
        self.step_count = 0
        self.carry = None
        self.last_loss = None

    def schedule(self, base: float) -> float:
        t = self.step_count
        if t < self.warmup:
            return base * t / max(1, self.warmup)
        frac = min(1.0, (t - self.warmup) / max(1, self.total - self.warmup))
        return base * (self.min_ratio + max(0.0, (1 - self.min_ratio) * 0.5 * (1 + math.cos(math.pi * frac))))

    def step(self, batch: dict[str, torch.Tensor]) -> None:
        model, cfg = self.model, self.model.cfg
        inputs, labels, ids = batch["inputs"], batch["labels"], batch["puzzle_identifiers"]
        B, positions = inputs.shape[0], cfg.seq_len + model.puzzle_len
        if self.carry is None:
            zeros = torch.zeros(B, positions, cfg.hidden, dtype=model.tok.weight.dtype)
            self.carry = dict(z_h=zeros, z_l=zeros, steps=torch.zeros(B, dtype=torch.int32),
                              halted=torch.ones(B, dtype=torch.bool), inputs=torch.zeros_like(inputs),
                              labels=torch.zeros_like(labels), ids=torch.zeros_like(ids))
        c = self.carry
        # Halted slots take the new example and restart from the initial states.
        h = c["halted"]
        z_h = torch.where(h[:, None, None], model.H_init, c["z_h"])
        z_l = torch.where(h[:, None, None], model.L_init, c["z_l"])
        steps = torch.where(h, 0, c["steps"])
        inputs = torch.where(h[:, None], inputs, c["inputs"])
        labels = torch.where(h[:, None], labels, c["labels"])
        ids = torch.where(h, ids, c["ids"])

        puzzle_rows = None
        if model.puzzle_len:
            puzzle_rows = model.puzzle_table[ids.long()].clone().requires_grad_(True)
        z_h, z_l, logits, q_halt, q_cont = model.segment(z_h, z_l, inputs, puzzle_rows)

        with torch.no_grad():
            steps = steps + 1
            last = steps >= cfg.halt_max_steps
            halted = last | (q_halt > q_cont)
            explore = torch.rand(B, dtype=q_halt.dtype) < cfg.explore
            min_steps = torch.where(explore, torch.randint(2, cfg.halt_max_steps + 1, (B,), dtype=torch.int32), 0)
            halted = halted & (steps >= min_steps)
            table_rows = model.puzzle_table[ids.long()] if model.puzzle_len else None
            _, _, _, nq_halt, nq_cont = model.segment(z_h, z_l, inputs, table_rows)
            target = torch.sigmoid(torch.where(last, nq_halt, torch.maximum(nq_halt, nq_cont)))
            mask = labels != IGNORE
            count = mask.sum(-1)
            seq_correct = (mask & (logits.argmax(-1) == labels)).sum(-1) == count

        lm = stablemax_xent(logits, labels).sum(-1) / count.clamp_min(1)
        q_loss = F.binary_cross_entropy_with_logits(q_halt, seq_correct.to(q_halt.dtype), reduction="sum")
        c_loss = F.binary_cross_entropy_with_logits(q_cont, target, reduction="sum")
        loss = lm.sum() + 0.5 * (q_loss + c_loss)
        (loss / self.B).backward()

        self.step_count += 1
        t, (b1, b2) = self.step_count, self.betas
        lr = self.schedule(self.lr)
        with torch.no_grad():
            for p, m, v in zip(self.params, self.m, self.v):
                if p.grad is None:
                    continue
                p.mul_(1 - lr * self.wd)
                m.lerp_(p.grad, 1 - b1)
                v.lerp_(p.grad.square(), 1 - b2)
                p.add_(torch.atan2(m, v.sqrt() / math.sqrt(1 - b2 ** t)), alpha=-lr / (1 - b1 ** t))
                p.grad = None
            if puzzle_rows is not None:
                plr = self.schedule(self.puzzle_lr)
                uniq, inverse = ids.long().unique(return_inverse=True)
                summed = torch.zeros(len(uniq), puzzle_rows.shape[1], dtype=puzzle_rows.dtype)
                summed.index_add_(0, inverse, puzzle_rows.grad)
                table = model.puzzle_table
                table[uniq] = table[uniq] * (1 - plr * self.puzzle_wd) - plr * torch.sign(summed)
        self.carry = dict(z_h=z_h, z_l=z_l, steps=steps, halted=halted, inputs=inputs, labels=labels, ids=ids)
        if t % self.log_interval == 0:
            self.last_loss = loss.item()


def load_from_hrm(model: HRM, state: dict[str, torch.Tensor]) -> None:
    """Copy a models/hrm.py HrmAct state dict into this model (names differ, values are the same)."""
    names = {"tok.weight": "inner.embed_tokens.embedding_weight", "lm_head.weight": "inner.lm_head.weight",
             "q_head.weight": "inner.q_head.weight", "q_head.bias": "inner.q_head.bias",
             "H_init": "inner.H_init", "L_init": "inner.L_init"}
    if model.pos is not None:
        names["pos.weight"] = "inner.embed_pos.embedding_weight"
    if model.puzzle_len:
        names["puzzle_table"] = "inner.puzzle_emb.weights"
    for level in ("H", "L"):
        for i in range(len(getattr(model, level))):
            ours = f"inner.{level}_level.layers.{i}."
            for mine, theirs in (("qkv", "self_attn.qkv_proj"), ("proj", "self_attn.o_proj"),
                                 ("gate_up", "mlp.gate_up_proj"), ("down", "mlp.down_proj")):
                names[f"{level}.{i}.{mine}.weight"] = ours + theirs + ".weight"
    with torch.no_grad():
        own = dict(model.named_parameters()) | dict(model.named_buffers())
        for mine, theirs in names.items():
            own[mine].copy_(state[theirs])
    model.set_rope()
