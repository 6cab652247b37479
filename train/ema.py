"""Exponential moving average (EMA) of a model's weights, for any architecture.

    ema = Ema(model, rate=0.999)          # shadow copy of the current weights
    ...after every optimiser step:   ema.update(model)
    with ema.swapped_in(model):           # evaluate / save with the averaged weights
        evaluate(model)
    checkpoint["ema"] = ema.state_dict()  # tensors only: loads with torch.load(weights_only=True)
    ema.load_state_dict(checkpoint["ema"])

Per step, for every tracked tensor w: shadow <- rate * shadow + (1 - rate) * w. Averaging the
last ~1/(1 - rate) steps' weights smooths the noise of small-batch training; TRM reports it
essential against overfitting on small data (its recipe: rate 0.999).

Tracked: every parameter, and the puzzle embedding table (a buffer trained by sparse sign-SGD; TRM's
EMA leaves it out, which pairs averaged network weights with the latest puzzle rows). Fixed buffers
(initial states, rotary tables) are not averaged. Names are the model's state_dict keys, so
`model.load_state_dict(ema.state_dict(), strict=False)` also installs the averaged weights. Pass
the bare model, not a DDP or torch.compile wrapper (their names carry a prefix), and create the
EMA after moving the model to its device: the averages live beside the weights. Memory: one more
copy of the weights (the puzzle table is most of it on ARC), plus one while swapped in.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

from hrm.common import HrmError
from hrm.models.layers import SparsePuzzleEmbedding


def averaged_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """The tensors an EMA of `model` tracks, by state_dict key: parameters + puzzle tables."""
    tensors = dict(model.named_parameters())
    for module_name, module in model.named_modules():
        if isinstance(module, SparsePuzzleEmbedding):
            tensors[f"{module_name}.weights" if module_name else "weights"] = module.weights
    return tensors


class Ema:
    def __init__(self, model: nn.Module, rate: float = 0.999):
        if not 0.0 <= rate <= 1.0:
            raise HrmError(f"ema_rate must be in [0, 1], got {rate}")
        self.rate = float(rate)
        self.shadow = {name: t.detach().clone() for name, t in averaged_tensors(model).items()}

    def _matching(self, model: nn.Module) -> dict[str, torch.Tensor]:
        current = averaged_tensors(model)
        if current.keys() != self.shadow.keys():
            raise ValueError("the model's tensors are not the ones this EMA tracks (a different model, "
                             "or a DDP/compiled wrapper instead of the bare model)")
        return current

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """shadow <- rate * shadow + (1 - rate) * weights, for every tracked tensor."""
        current = self._matching(model)
        shadows = list(self.shadow.values())
        # lerp(shadow, w, 1 - rate) = shadow + (1 - rate)(w - shadow); one fused call per dtype/device.
        weights = [current[name].to(device=s.device, dtype=s.dtype) for name, s in self.shadow.items()]
        torch._foreach_lerp_(shadows, weights, 1.0 - self.rate)

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        """Overwrite the model's tracked tensors with the averages (in place: optimisers keep them)."""
        for name, tensor in self._matching(model).items():
            tensor.copy_(self.shadow[name])

    @contextmanager
    def swapped_in(self, model: nn.Module) -> Iterator[nn.Module]:
        """Inside the block the model holds the averaged weights; its own come back on exit (also on
        an exception). Costs one copy of the weights while inside."""
        current = self._matching(model)
        with torch.no_grad():
            saved = {name: tensor.clone() for name, tensor in current.items()}
        self.copy_to(model)
        try:
            yield model
        finally:
            with torch.no_grad():
                for name, tensor in current.items():
                    tensor.copy_(saved[name])

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The averaged tensors by the model's state_dict keys (no rate: it is configuration)."""
        return {name: tensor.clone() for name, tensor in self.shadow.items()}

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if state.keys() != self.shadow.keys():
            missing = sorted(self.shadow.keys() - state.keys())
            unexpected = sorted(state.keys() - self.shadow.keys())
            raise HrmError(f"EMA state does not match the model (missing {missing[:3]}, unexpected {unexpected[:3]})")
        for name, tensor in state.items():
            if tensor.shape != self.shadow[name].shape:
                raise HrmError(f"EMA state: {name} has shape {tuple(tensor.shape)}, the model "
                               f"{tuple(self.shadow[name].shape)}")
            self.shadow[name].copy_(tensor)
