"""The Hierarchical Reasoning Model (HRM) with ACT deep supervision (SPEC 4; arXiv 2506.21734).

Two recurrent modules of the same shape reason over the whole puzzle at once:
  z_low  - the fast, low-level state, updated every step from (z_low, z_high + x)
  z_high - the slow, high-level state, updated from (z_high, z_low) after every L_cycles low steps
where x is the embedded input. One call of `HrmInner` is one *segment*: H_cycles * L_cycles low
steps and H_cycles high steps, of which only the last low and the last high step carry gradient
(the one-step gradient approximation) unless `arch.bptt` asks for more (models/depth.py).
`HrmAct` runs segments over a batch of slots, halting each slot when its Q head says so
(Q-learning on "is the answer right yet?"), and refills halted slots with new examples.

The module tree (inner.H_level.layers.N.self_attn.qkv_proj.weight, inner.embed_tokens...,
inner.H_init, ...) is the reference implementation's, so its checkpoints load by stripping the
`_orig_mod.model.` prefix.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, fields
from typing import Callable, ClassVar, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from hrm.common import HrmError
from hrm.models.depth import SCHEDULABLE_KEYS, resolve_bptt
from hrm.models.layers import (CastedEmbedding, CastedLinear, CosSin, RotaryEmbedding, SparsePuzzleEmbedding,
                          TokenMlpBlock, TransformerBlock, attention_backend, trunc_normal_)

Batch = dict[str, torch.Tensor]


@dataclass
class HrmConfig:
    # Data shapes (from the dataset, not the arch config).
    seq_len: int
    vocab_size: int
    num_puzzle_identifiers: int
    batch_size: int
    # Architecture; the names are the reference's `arch.*` keys. Defaults: the paper's model (written
    # only here: train.config.arch_defaults reads them, so config and model cannot drift apart).
    name: str = "hrm"
    H_cycles: int = 2
    L_cycles: int = 2
    # Gradient depth (models/depth.py): the final low-level steps of a segment that carry
    # gradient, with every high-level update among them; 1 = the one-step gradient, "all" = the
    # whole segment (backpropagation through H_cycles x L_cycles low and H_cycles high updates).
    bptt: int | str = 1
    H_layers: int = 4
    L_layers: int = 4
    hidden_size: int = 512
    num_heads: int = 8
    expansion: float = 4.0
    pos_encodings: str = "rope"          # "rope" | "learned"
    # Mix positions with an MLP over the fixed grid instead of attention (TRM's mlp_t; its paper's
    # best on 9x9 sudoku): each block's token mixer is a SwiGLU across the positions.
    mlp_t: bool = False
    puzzle_emb_ndim: int = 512           # 0 = no puzzle embedding
    halt_max_steps: int = 16
    halt_exploration_prob: float = 0.1
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-5
    forward_dtype: str = "bfloat16"      # used on CUDA only; CPU/MPS run in the weights' dtype
    loss_type: str = "stablemax_cross_entropy"  # read by train.losses.act_loss, not the model
    # Training options beyond the paper (EqR, arXiv 2605.21488), all off by default. init_std:
    # each reset slot starts from H_init/L_init plus Gaussian noise of this std per position.
    # path_noise: Gaussian noise of this std added to the states after every update. damping (lambda):
    # every update is z <- (1 - lambda) z + lambda f(z); 1.0 is the plain update z <- f(z).
    # Noise is drawn in training only; test-time noise and restarts are `hrm eval` options.
    init_std: float = 0.0
    path_noise: float = 0.0
    damping: float = 1.0

    # Validation tables; other architectures' configs (subclasses) adjust them.
    POSITIVE_KEYS: ClassVar[tuple[str, ...]] = (
        "seq_len", "vocab_size", "num_puzzle_identifiers", "batch_size", "H_cycles", "L_cycles", "H_layers",
        "L_layers", "hidden_size", "num_heads", "expansion", "halt_max_steps", "rope_theta", "rms_norm_eps")
    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {
        "pos_encodings": ("rope", "learned"), "forward_dtype": ("float32", "bfloat16"),
        "loss_type": ("stablemax_cross_entropy", "softmax_cross_entropy")}

    def __post_init__(self) -> None:
        kinds = {"int": ((int,), "an integer"), "float": ((int, float), "a number"), "str": ((str,), "a string"),
                 "bool": ((bool,), "true or false")}
        for f in fields(self):
            if f.name == "bptt":
                continue  # checked against the segment's length below
            value = getattr(self, f.name)
            types, what = kinds[f.type]
            if (isinstance(value, bool) and f.type != "bool") or not isinstance(value, types):
                raise HrmError(f"arch.{f.name} must be {what}, got {value!r}")
            if f.type == "float":
                setattr(self, f.name, float(value))
        for key in self.POSITIVE_KEYS:
            if getattr(self, key) <= 0:
                raise HrmError(f"arch.{key} must be positive, got {getattr(self, key)!r}")
        if self.puzzle_emb_ndim < 0:
            raise HrmError(f"arch.puzzle_emb_ndim must be >= 0, got {self.puzzle_emb_ndim}")
        for key in ("init_std", "path_noise"):
            if not getattr(self, key) >= 0:
                raise HrmError(f"arch.{key} must be >= 0, got {getattr(self, key)}")
        if not 0 < self.damping <= 1:
            raise HrmError(f"arch.damping must be in (0, 1] (1 = no damping), got {self.damping}")
        if not 0 <= self.halt_exploration_prob <= 1:
            raise HrmError(f"arch.halt_exploration_prob must be in [0, 1], got {self.halt_exploration_prob}")
        if self.hidden_size % self.num_heads or (self.hidden_size // self.num_heads) % 2:
            raise HrmError(f"arch.hidden_size ({self.hidden_size}) must be num_heads ({self.num_heads}) "
                           f"times an even head size")
        for key, allowed in self.CHOICES.items():
            if getattr(self, key) not in allowed:
                raise HrmError(f"arch.{key} must be one of {', '.join(allowed)}, got {getattr(self, key)!r}")
        resolve_bptt(self.bptt, *self.gradient_units(self.H_cycles, self.L_cycles))

    @staticmethod
    def gradient_units(H_cycles: int, L_cycles: int) -> tuple[int, str]:
        """(how many units arch.bptt counts in a segment, what they are): HRM's low-level steps."""
        return H_cycles * L_cycles, f"low-level steps of a segment (H_cycles {H_cycles} x L_cycles {L_cycles})"

    @property
    def gradient_steps(self) -> int:
        """arch.bptt as a count of `gradient_units` ("all" resolved)."""
        units, _ = self.gradient_units(self.H_cycles, self.L_cycles)
        return units if self.bptt == "all" else self.bptt

    def set_depth(self, **values: int | str) -> None:
        """Switch to a stage of a depth schedule (H_cycles, L_cycles, bptt), checked as a whole.
        Model and ACT wrapper share this config, so the next segment runs at the new depth."""
        changed = {**{key: getattr(self, key) for key in SCHEDULABLE_KEYS}, **values}
        resolve_bptt(changed["bptt"], *self.gradient_units(changed["H_cycles"], changed["L_cycles"]))
        for key, value in values.items():
            setattr(self, key, value)

    @property
    def puzzle_emb_len(self) -> int:
        """Positions the puzzle embedding occupies in front of the tokens: ceil(ndim / hidden)."""
        return -(-self.puzzle_emb_ndim // self.hidden_size)


@dataclass
class HrmCarry:
    """What each of the B slots is doing between segments (all tensors, so it can be saved)."""
    z_high: torch.Tensor      # [B, positions, hidden], detached
    z_low: torch.Tensor       # [B, positions, hidden], detached
    steps: torch.Tensor       # [B] int32: segments run on the current example
    halted: torch.Tensor      # [B] bool: the slot finished; the next call refills it
    current_data: Batch       # the example each slot is working on (a batch's keys)


def gradient_if(enabled: bool) -> contextlib.AbstractContextManager:
    """No gradient unless `enabled`; never turns gradient on inside an outer no_grad (evaluation,
    the no-grad forward for the Q target)."""
    return contextlib.nullcontext() if enabled else torch.no_grad()


def module_blocks(config: HrmConfig, num_layers: int) -> list[nn.Module]:
    """The blocks of one module: transformer blocks (attention, then an MLP over the channels), or
    with arch.mlp_t blocks that mix the seq_len + puzzle_emb_len positions with an MLP instead."""
    if config.mlp_t:
        positions = config.seq_len + config.puzzle_emb_len
        return [TokenMlpBlock(positions, config.hidden_size, config.expansion, config.rms_norm_eps)
                for _ in range(num_layers)]
    return [TransformerBlock(config.hidden_size, config.num_heads, config.expansion, config.rms_norm_eps)
            for _ in range(num_layers)]


class ReasoningModule(nn.Module):
    """H or L: add the input injection to the state, then run the blocks."""

    def __init__(self, blocks: Iterable[nn.Module]):
        super().__init__()
        self.layers = nn.ModuleList(blocks)

    def forward(self, state: torch.Tensor, input_injection: torch.Tensor, cos_sin: CosSin | None) -> torch.Tensor:
        hidden = state + input_injection
        for layer in self.layers:
            hidden = layer(hidden, cos_sin)
        return hidden


class InnerModel(nn.Module):
    """What one segment of every architecture (HRM, TRM, the transformer baseline) shares: the input
    embeddings (tokens, puzzle rows, positions), the LM and Q heads and the two fixed initial states.
    A subclass adds its blocks in `build_blocks` and defines `forward(z_high, z_low, batch) ->
    (z_high, z_low, logits, q_halt_logits, q_continue_logits)`, the states detached for the carry."""

    def __init__(self, config: HrmConfig):
        super().__init__()
        self.config = config
        hidden = config.hidden_size
        positions = config.seq_len + config.puzzle_emb_len
        self.embed_scale = math.sqrt(hidden)

        self.embed_tokens = CastedEmbedding(config.vocab_size, hidden, init_std=1 / self.embed_scale)
        self.lm_head = CastedLinear(hidden, config.vocab_size)
        self.q_head = CastedLinear(hidden, 2, bias=True)
        self.puzzle_emb = (SparsePuzzleEmbedding(config.num_puzzle_identifiers, config.puzzle_emb_ndim,
                                                 config.batch_size) if config.puzzle_emb_ndim > 0 else None)
        if config.pos_encodings == "rope":
            self.rotary_emb = RotaryEmbedding(hidden // config.num_heads, positions, config.rope_theta)
        elif config.pos_encodings == "learned":
            self.embed_pos = CastedEmbedding(positions, hidden, init_std=1 / self.embed_scale)
        # Between the embeddings and the initial states, so that a seed gives HRM the same
        # initial weights as before this class was shared.
        self.build_blocks(config)

        # Fixed (never trained) initial states, broadcast over positions when a slot is reset.
        self.register_buffer("H_init", trunc_normal_(torch.empty(hidden), std=1.0))
        self.register_buffer("L_init", trunc_normal_(torch.empty(hidden), std=1.0))

        # Q head starts near "never halt" (sigmoid(-5) ~ 0.007) so that early training runs
        # long segments and the Q targets bootstrap from informative states.
        with torch.no_grad():
            self.q_head.weight.zero_()
            self.q_head.bias.fill_(-5.0)

        # Noise added to the states after every update, when set: HrmAct sets it for training's
        # path noise, test-time sampling (eval.candidates) for its trajectories. None: no noise.
        self.state_noise: Callable[[torch.Tensor], torch.Tensor] | None = None
        # Called after every update with (module name, state before, state after), when set:
        # `hrm trace` (hrm.analysis.trace) records the recurrence through it. It only reads.
        self.update_observer: Callable[[str, torch.Tensor, torch.Tensor], None] | None = None

    def build_blocks(self, config: HrmConfig) -> None:
        raise NotImplementedError

    def compute_dtype(self, device: torch.device) -> torch.dtype:
        """bf16 on CUDA when asked; elsewhere the weights' own dtype (float32; float64 in tests)."""
        if device.type == "cuda" and self.config.forward_dtype == "bfloat16":
            return torch.bfloat16
        return self.embed_tokens.embedding_weight.dtype

    def update(self, state: torch.Tensor, proposal: torch.Tensor, module: str) -> torch.Tensor:
        """One recurrent update of `module` ("low"/"high" in HRM, "latent"/"answer" in TRM, "blocks"
        in the transformer) from `state` to f(state) = `proposal`: damped,
        z <- z + lambda (f(z) - z) = (1 - lambda) z + lambda f(z), then noised (state_noise)."""
        if self.config.damping != 1.0:
            proposal = state + self.config.damping * (proposal - state)
        new_state = proposal if self.state_noise is None else self.state_noise(proposal)
        if self.update_observer is not None:
            self.update_observer(module, state, new_state)
        return new_state

    def rotary(self) -> CosSin | None:
        return self.rotary_emb() if self.config.pos_encodings == "rope" else None

    def input_embeddings(self, inputs: torch.Tensor, puzzle_identifiers: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        dtype = self.compute_dtype(inputs.device)
        embedding = self.embed_tokens(inputs, dtype)                       # [B, seq_len, hidden]
        if cfg.puzzle_emb_len > 0:
            # The puzzle vector, zero-padded to fill the positions in front of the tokens (all
            # zeros when there is no puzzle embedding but the config asks for positions, as TRM may).
            if self.puzzle_emb is not None:
                puzzle = self.puzzle_emb(puzzle_identifiers, dtype)        # [B, puzzle_emb_ndim]
            else:
                puzzle = embedding.new_zeros(embedding.shape[0], 0)
            puzzle = F.pad(puzzle, (0, cfg.puzzle_emb_len * cfg.hidden_size - puzzle.shape[1]))
            embedding = torch.cat((puzzle.view(-1, cfg.puzzle_emb_len, cfg.hidden_size), embedding), dim=1)
        if cfg.pos_encodings == "learned":
            # 1/sqrt(2) keeps the variance of the sum equal to that of each term.
            embedding = (embedding + self.embed_pos.embedding_weight.to(dtype)) / math.sqrt(2)
        return self.embed_scale * embedding

    def heads(self, z_high: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> logits [B, seq_len, vocab] (the puzzle positions dropped), q_halt_logits [B],
        q_continue_logits [B] from position 0; in float32 (float64 if the whole model is double)
        whatever the forward dtype."""
        out_dtype = torch.promote_types(z_high.dtype, torch.float32)
        logits = self.lm_head(z_high)[:, self.config.puzzle_emb_len:].to(out_dtype)
        q_logits = self.q_head(z_high[:, 0]).to(out_dtype)
        return logits, q_logits[:, 0], q_logits[:, 1]


class HrmInner(InnerModel):
    """One segment of HRM: the H/L recurrence between the embeddings and the heads."""

    def build_blocks(self, config: HrmConfig) -> None:
        self.H_level = ReasoningModule(module_blocks(config, config.H_layers))
        self.L_level = ReasoningModule(module_blocks(config, config.L_layers))

    def forward(self, z_high: torch.Tensor, z_low: torch.Tensor, batch: Batch):
        """-> (z_high, z_low) detached for the carry, logits [B, seq_len, vocab],
        q_halt_logits [B], q_continue_logits [B] (float32, or float64 for a double model)."""
        cfg = self.config
        cos_sin = self.rotary()
        x = self.input_embeddings(batch["inputs"], batch["puzzle_identifiers"])

        # Gradient depth (arch.bptt): the last `gradient_steps` low steps carry gradient, and so
        # does every high update after one of them; everything before runs without. With 1 (the
        # one-step gradient) d loss / d params flows through one L and one H update and into x;
        # never, whatever the depth, back into earlier segments (the carry is detached).
        first_step_with_grad = cfg.H_cycles * cfg.L_cycles - cfg.gradient_steps
        for h_step in range(cfg.H_cycles):
            for l_step in range(cfg.L_cycles):
                low_step = h_step * cfg.L_cycles + l_step
                with gradient_if(low_step >= first_step_with_grad):
                    z_low = self.update(z_low, self.L_level(z_low, z_high + x, cos_sin), "low")
            with gradient_if(low_step >= first_step_with_grad):  # the low step just before it had gradient
                z_high = self.update(z_high, self.H_level(z_high, z_low, cos_sin), "high")

        return z_high.detach(), z_low.detach(), *self.heads(z_high)


class HrmAct(nn.Module):
    """ACT wrapper: one call = one segment for every slot; see initial_carry and forward.

    It drives any `InnerModel` (HRM's by default; TRM and the transformer baseline pass theirs).
    `learns_q_continue` False is TRM's rule: halt when q_halt > 0 (sigmoid > 1/2) and learn no
    value for "continue", which also saves the extra forward that computes its target.
    """

    def __init__(self, config: HrmConfig, inner: InnerModel | None = None, learns_q_continue: bool = True):
        super().__init__()
        self.config = config
        self.inner = HrmInner(config) if inner is None else inner
        self.learns_q_continue = learns_q_continue
        # (first, total): this process holds slots [first, first + B) of a global batch of `total`
        # (common.distributed sets it under torchrun). Random draws are made for the whole global
        # batch and sliced, so N processes explore exactly as one process with the whole batch.
        self.global_slots: tuple[int, int] | None = None

    @property
    def puzzle_emb(self) -> SparsePuzzleEmbedding | None:
        return self.inner.puzzle_emb

    def global_randn(self, like: torch.Tensor) -> torch.Tensor:
        """Standard normal noise shaped like `like` [B, ...], drawn for the whole global batch
        from the global generator and sliced to this process's slots: one noise per global slot
        whatever the number of processes, and restored exactly on resume (saved RNG state)."""
        first, total = self.global_slots or (0, like.shape[0])
        noise = torch.randn((total, *like.shape[1:]), dtype=like.dtype, device=like.device)
        return noise[first:first + like.shape[0]]

    def initial_carry(self, batch: Batch) -> HrmCarry:
        """Every slot marked halted, so the first forward loads `batch` and resets the states."""
        inputs = batch["inputs"]
        device, size = inputs.device, inputs.shape[0]
        dtype = self.inner.compute_dtype(device)
        attention_backend(device, dtype)  # decide (and log) the kernel before any compiled code runs
        positions = self.config.seq_len + self.config.puzzle_emb_len
        z = torch.zeros(size, positions, self.config.hidden_size, dtype=dtype, device=device)
        return HrmCarry(z_high=z, z_low=z.clone(),
                        steps=torch.zeros(size, dtype=torch.int32, device=device),
                        halted=torch.ones(size, dtype=torch.bool, device=device),
                        current_data={key: torch.zeros_like(value) for key, value in batch.items()})

    def forward(self, carry: HrmCarry, batch: Batch) -> tuple[HrmCarry, dict[str, torch.Tensor]]:
        cfg = self.config
        inner = self.inner

        # Refill: a slot that halted takes this batch's example and starts from the initial states.
        halted = carry.halted
        reset = halted.view(-1, 1, 1)
        h_init, l_init = inner.H_init.to(carry.z_high.dtype), inner.L_init.to(carry.z_low.dtype)
        if self.training and cfg.init_std > 0:
            # Random initial states (EqR): the fixed vectors plus per-position noise, so that the
            # model learns to reach its answer from anywhere near them (test time: --restarts).
            h_init = h_init + cfg.init_std * self.global_randn(carry.z_high)
            l_init = l_init + cfg.init_std * self.global_randn(carry.z_low)
        z_high = torch.where(reset, h_init, carry.z_high)
        z_low = torch.where(reset, l_init, carry.z_low)
        steps = torch.where(halted, 0, carry.steps)
        current_data = {key: torch.where(halted.view(-1, *[1] * (value.ndim - 1)), batch[key], value)
                        for key, value in carry.current_data.items()}

        if not (self.training and cfg.path_noise > 0):
            return self._segment(inner, z_high, z_low, steps, current_data)
        # Path noise (EqR): every update of this segment, and of the extra forward for the
        # q_continue target, is perturbed; in training only.
        inner.state_noise = lambda state: state + cfg.path_noise * self.global_randn(state)
        try:
            return self._segment(inner, z_high, z_low, steps, current_data)
        finally:
            inner.state_noise = None

    def _segment(self, inner: InnerModel, z_high: torch.Tensor, z_low: torch.Tensor, steps: torch.Tensor,
                 current_data: Batch) -> tuple[HrmCarry, dict[str, torch.Tensor]]:
        cfg = self.config
        z_high, z_low, logits, q_halt, q_continue = inner(z_high, z_low, current_data)
        outputs = {"logits": logits, "q_halt_logits": q_halt, "q_continue_logits": q_continue}

        with torch.no_grad():
            steps = steps + 1
            is_last_step = steps >= cfg.halt_max_steps
            halted = is_last_step
            # Evaluation always runs halt_max_steps segments, so a batch finishes together.
            if self.training and cfg.halt_max_steps > 1:
                halted = halted | (q_halt > (q_continue if self.learns_q_continue else 0))
                # Exploration: with probability halt_exploration_prob a slot must run at least a
                # uniform draw from 2..halt_max_steps segments before it may halt.
                first, total = self.global_slots or (0, q_halt.shape[0])
                mine = slice(first, first + q_halt.shape[0])
                draw = torch.rand(total, dtype=q_halt.dtype, device=q_halt.device)[mine]
                explore = draw < cfg.halt_exploration_prob
                low_steps = torch.randint(2, cfg.halt_max_steps + 1, (total,), dtype=steps.dtype, device=steps.device)
                min_steps = torch.where(explore, low_steps[mine], 0)
                halted = halted & (steps >= min_steps)

                if self.learns_q_continue:
                    # Q-learning target for "continue": the value of the best action after one
                    # more segment (only "halt" exists after the last step), from one extra no-grad
                    # forward; no replay buffer or target network, the many slots decorrelate.
                    _, _, _, next_q_halt, next_q_continue = inner(z_high, z_low, current_data)
                    best_next = torch.where(is_last_step, next_q_halt, torch.maximum(next_q_halt, next_q_continue))
                    outputs["target_q_continue"] = torch.sigmoid(best_next)

        return HrmCarry(z_high, z_low, steps, halted, current_data), outputs
