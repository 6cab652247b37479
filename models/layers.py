"""Transformer building blocks shared by the recurrent reasoners (HRM now; TRM and the plain
transformer baseline reuse them).

Parameter names follow the reference implementation (`qkv_proj`, `o_proj`, `gate_up_proj`,
`down_proj`, `embedding_weight`, `weights`) so that its checkpoints load by stripping a prefix.
Weights are kept in float32 ("master weights") and cast to the activations' dtype at use, which
is how the bf16 forward on GPU works without autocast.
"""
from __future__ import annotations

import importlib
import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from hrm.common import log

CosSin = tuple[torch.Tensor, torch.Tensor]
HALF_DTYPES = (torch.float16, torch.bfloat16)


def trunc_normal_(tensor: torch.Tensor, std: float, lower: float = -2.0, upper: float = 2.0) -> torch.Tensor:
    """Fill `tensor` with a normal cut at [lower, upper] standard deviations whose *actual* standard
    deviation is `std` (as JAX's truncated_normal initialiser, which the reference mirrors).

    torch.nn.init.trunc_normal_ takes the std of the normal before cutting, so its samples come
    out about 12% narrower; here the underlying normal is widened to compensate.
    """
    with torch.no_grad():
        if std == 0:
            return tensor.zero_()
        sqrt2 = math.sqrt(2.0)
        lo, hi = math.erf(lower / sqrt2), math.erf(upper / sqrt2)
        mass = (hi - lo) / 2
        pdf_lower = math.exp(-0.5 * lower ** 2) / math.sqrt(2 * math.pi)
        pdf_upper = math.exp(-0.5 * upper ** 2) / math.sqrt(2 * math.pi)
        # Variance of a standard normal truncated to [lower, upper].
        variance = 1 - (upper * pdf_upper - lower * pdf_lower) / mass - ((pdf_upper - pdf_lower) / mass) ** 2
        underlying_std = std / math.sqrt(variance)
        # Inverse-CDF sampling: uniform on [erf(lower/sqrt2), erf(upper/sqrt2)] -> erfinv.
        tensor.uniform_(lo, hi).erfinv_().mul_(sqrt2 * underlying_std)
        return tensor.clamp_(lower * underlying_std, upper * underlying_std)


def rms_norm(x: torch.Tensor, eps: float) -> torch.Tensor:
    """x / sqrt(mean(x^2) + eps) over the last axis, without a learned scale (as the reference:
    its post-norm blocks have no norm weights at all). Half-precision inputs are normalised in
    float32 and cast back."""
    compute = torch.float32 if x.dtype in HALF_DTYPES else x.dtype
    y = x.to(compute)
    y = y * torch.rsqrt(y.square().mean(-1, keepdim=True) + eps)
    return y.to(x.dtype)


class CastedLinear(nn.Module):
    """y = x W^T (+ b) with W cast to x's dtype; truncated LeCun-normal init (std 1/sqrt(fan_in))."""

    def __init__(self, in_features: int, out_features: int, bias: bool = False):
        super().__init__()
        self.weight = nn.Parameter(trunc_normal_(torch.empty(out_features, in_features), std=in_features ** -0.5))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias.to(x.dtype) if self.bias is not None else None
        return F.linear(x, self.weight.to(x.dtype), bias)


class CastedEmbedding(nn.Module):
    """A lookup table (truncated normal with the given std) read in the forward dtype."""

    def __init__(self, num_embeddings: int, embedding_dim: int, init_std: float):
        super().__init__()
        self.embedding_weight = nn.Parameter(trunc_normal_(torch.empty(num_embeddings, embedding_dim), std=init_std))

    def forward(self, ids: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        return F.embedding(ids.long(), self.embedding_weight.to(dtype))


class RotaryEmbedding(nn.Module):
    """cos/sin tables for rotary positions in the "rotate half" layout: the first and second halves
    of each head's dims form the rotated pairs (what the reference's qkv weights expect)."""

    def __init__(self, head_dim: int, max_positions: int, theta: float):
        super().__init__()
        self.head_dim, self.max_positions, self.theta = head_dim, max_positions, theta
        # Not persistent: derived from the config, and the reference does not save them either.
        self.register_buffer("cos_cached", torch.empty(max_positions, head_dim), persistent=False)
        self.register_buffer("sin_cached", torch.empty(max_positions, head_dim), persistent=False)
        self._fill_tables()

    def _fill_tables(self) -> None:
        # Angles in float64 (position * frequency loses ~1e-4 rad in float32 at position 900),
        # then rounded once to the tables' dtype.
        inv_freq = self.theta ** (-torch.arange(0, self.head_dim, 2, dtype=torch.float64) / self.head_dim)
        angles = torch.outer(torch.arange(self.max_positions, dtype=torch.float64), inv_freq)
        angles = torch.cat((angles, angles), dim=-1)  # [positions, head_dim]
        with torch.no_grad():
            self.cos_cached.copy_(angles.cos())
            self.sin_cached.copy_(angles.sin())

    def _apply(self, fn, recurse=True):  # noqa: ANN001 - nn.Module's signature
        # After .double() recompute, rather than widen the float32-rounded values.
        super()._apply(fn, recurse)
        self._fill_tables()
        return self

    def forward(self) -> CosSin:
        return self.cos_cached, self.sin_cached


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    first, second = x.chunk(2, dim=-1)
    return torch.cat((-second, first), dim=-1)


def apply_rotary(q: torch.Tensor, k: torch.Tensor, cos_sin: CosSin) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate q and k ([batch, positions, heads, head_dim]) by their positions' angles."""
    cos, sin = (t[:, None, :] for t in cos_sin)  # broadcast over heads
    dtype = q.dtype
    # Rotations are done in the tables' precision (float32, or float64 when the model is double).
    q, k = q.to(cos.dtype), k.to(cos.dtype)
    q = q * cos + rotate_half(q) * sin
    k = k * cos + rotate_half(k) * sin
    return q.to(dtype), k.to(dtype)


# ---- attention backend: FlashAttention 3 or 2 on CUDA when importable, else torch SDPA ----

_flash: tuple[str, Callable] | None = None
_flash_probed = False
_logged_backends: set[tuple[str, str]] = set()


def _flash_attention() -> tuple[str, Callable] | None:
    """(name, flash_attn_func) of the newest importable FlashAttention, probed once; None if none.
    Any failure (not installed, built for another CUDA, no GPU) just means "use SDPA"."""
    global _flash, _flash_probed
    if not _flash_probed:
        _flash_probed = True
        for name, module in (("flash_attention_3", "flash_attn_interface"), ("flash_attention_2", "flash_attn")):
            try:
                _flash = (name, importlib.import_module(module).flash_attn_func)
                break
            except Exception:  # noqa: BLE001 - a broken install must not stop training
                continue
    return _flash


def _use_flash(x: torch.Tensor) -> bool:
    # FlashAttention kernels only take half precision on CUDA; everything else goes to SDPA.
    return x.is_cuda and x.dtype in HALF_DTYPES and _flash_attention() is not None


def attention_backend(device: torch.device | str, dtype: torch.dtype) -> str:
    """The attention kernel used for activations of `dtype` on `device`: "flash_attention_3",
    "flash_attention_2" or "sdpa". Logs the choice the first time each one is made."""
    device = torch.device(device)
    name = "sdpa"
    if device.type == "cuda" and dtype in HALF_DTYPES and _flash_attention() is not None:
        name = _flash_attention()[0]
    if (device.type, name) not in _logged_backends:
        _logged_backends.add((device.type, name))
        why = " (FlashAttention not importable or not applicable)" if device.type == "cuda" and name == "sdpa" else ""
        log(f"attention backend on {device.type}: {name}{why}")
    return name


class Attention(nn.Module):
    """Non-causal multi-head self-attention with one fused qkv projection and no biases."""

    def __init__(self, hidden_size: int, num_heads: int):
        super().__init__()
        if hidden_size % num_heads:
            raise ValueError(f"hidden_size {hidden_size} is not a multiple of num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = hidden_size // num_heads
        self.qkv_proj = CastedLinear(hidden_size, 3 * hidden_size)
        self.o_proj = CastedLinear(hidden_size, hidden_size)

    def forward(self, x: torch.Tensor, cos_sin: CosSin | None) -> torch.Tensor:
        batch, positions, hidden = x.shape
        qkv = self.qkv_proj(x).view(batch, positions, 3 * self.num_heads, self.head_dim)
        q, k, v = qkv.split(self.num_heads, dim=2)  # each [batch, positions, heads, head_dim]
        if cos_sin is not None:
            q, k = apply_rotary(q, k, cos_sin)
        if _use_flash(q):
            out = _flash_attention()[1](q, k, v, causal=False)
            out = out[0] if isinstance(out, tuple) else out  # FA3 may also return the log-sum-exp
        else:
            out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
            out = out.transpose(1, 2)
        return self.o_proj(out.reshape(batch, positions, hidden))


def swiglu_width(hidden_size: int, expansion: float) -> int:
    """Inner width of the SwiGLU MLP: 2/3 of expansion * hidden (so its parameter count matches a
    plain MLP of that expansion), rounded up to a multiple of 256 for efficient matmuls."""
    return -(-round(expansion * hidden_size * 2 / 3) // 256) * 256


class SwiGLU(nn.Module):
    def __init__(self, hidden_size: int, expansion: float):
        super().__init__()
        inner = swiglu_width(hidden_size, expansion)
        self.gate_up_proj = CastedLinear(hidden_size, 2 * inner)
        self.down_proj = CastedLinear(inner, hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up_proj(x).chunk(2, dim=-1)
        return self.down_proj(F.silu(gate) * up)


class TransformerBlock(nn.Module):
    """Post-norm block: x = norm(x + attn(x)); x = norm(x + mlp(x))."""

    def __init__(self, hidden_size: int, num_heads: int, expansion: float, norm_eps: float):
        super().__init__()
        self.self_attn = Attention(hidden_size, num_heads)
        self.mlp = SwiGLU(hidden_size, expansion)
        self.norm_eps = norm_eps

    def forward(self, x: torch.Tensor, cos_sin: CosSin | None) -> torch.Tensor:
        x = rms_norm(x + self.self_attn(x, cos_sin), self.norm_eps)
        return rms_norm(x + self.mlp(x), self.norm_eps)


class TokenMlpBlock(nn.Module):
    """A post-norm block whose token mixer is a SwiGLU MLP across positions instead of attention
    (TRM's `mlp_t`; `arch.mlp_t` in every architecture): on a small fixed grid (a 9x9 sudoku) a
    learned position-to-position map beats attention. As in the reference, the mixer's residual is normalised over the positions
    of each channel (it is taken while transposed), the channel MLP's over the channels."""

    def __init__(self, positions: int, hidden_size: int, expansion: float, norm_eps: float):
        super().__init__()
        self.mlp_t = SwiGLU(positions, expansion)
        self.mlp = SwiGLU(hidden_size, expansion)
        self.norm_eps = norm_eps

    def forward(self, x: torch.Tensor, cos_sin: CosSin | None) -> torch.Tensor:
        channels_first = x.transpose(1, 2)                                   # [B, hidden, positions]
        x = rms_norm(channels_first + self.mlp_t(channels_first), self.norm_eps).transpose(1, 2)
        return rms_norm(x + self.mlp(x), self.norm_eps)


class SparsePuzzleEmbedding(nn.Module):
    """One vector per puzzle identifier, trained sparsely by `optim.SparseSignSGD`.

    The full table `weights` is a buffer (zero-initialised, never touched by the dense optimiser).
    A training forward with gradients copies the batch's rows into the leaf `local_weights`
    (requires_grad) and records their ids in `local_ids`; after backward, local_weights.grad holds
    one gradient row per batch slot, which the sign-SGD step sums per id and applies to the table.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, batch_size: int):
        super().__init__()
        self.register_buffer("weights", torch.zeros(num_embeddings, embedding_dim))
        self.register_buffer("local_weights", torch.zeros(batch_size, embedding_dim, requires_grad=True),
                             persistent=False)
        self.register_buffer("local_ids", torch.zeros(batch_size, dtype=torch.int32), persistent=False)

    def forward(self, ids: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        if not (self.training and torch.is_grad_enabled()):
            # Evaluation, and the ACT target's extra no-grad forward: a plain lookup, so the rows
            # and gradient recorded by the training forward stay as they are.
            return self.weights[ids.long()].to(dtype)
        if self.local_weights.shape[0] != ids.shape[0]:
            self.local_ids = torch.zeros(ids.shape[0], dtype=torch.int32, device=self.weights.device)
            self.local_weights = self.weights.new_zeros(ids.shape[0], self.weights.shape[1]).requires_grad_(True)
        with torch.no_grad():
            self.local_weights.copy_(self.weights[ids.long()])
            self.local_ids.copy_(ids)
        return self.local_weights.to(dtype)

    def _apply(self, fn, recurse=True):  # noqa: ANN001 - nn.Module's signature
        # .to()/.double() on a buffer that requires grad returns a non-leaf copy (its .grad would
        # never be filled): make local_weights a leaf again after every device/dtype move.
        super()._apply(fn, recurse)
        self.local_weights = self.local_weights.detach().requires_grad_(True)
        return self
