"""Optimisers and the schedule against hand-computed updates (plain Python floats)."""
from __future__ import annotations

import copy
import math

import pytest
import torch

from hrm.models.layers import SparsePuzzleEmbedding
from tests.test_model import one_thread, random_batch, tiny_model  # noqa: F401 - one_thread: fixture
from hrm.train.optim import AdamAtan2, SparseSignSGD, lr_at


def test_adam_atan2_matches_the_spec_formula_step_by_step():
    start = [0.5, -1.0, 2.0, 0.0]
    grads = [[0.1, -0.2, 0.0, 3.0], [-0.3, -0.2, 0.5, 1.0], [0.2, 0.4, -0.1, 0.0]]
    lrs = [0.1, 0.05, 0.2]  # the loop changes lr between steps
    b1, b2, wd = 0.9, 0.95, 0.1
    p = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    opt = AdamAtan2([p], lr=lrs[0], betas=(b1, b2), weight_decay=wd)

    ref, m, v = list(start), [0.0] * 4, [0.0] * 4
    for t, (g, lr) in enumerate(zip(grads, lrs), start=1):
        opt.param_groups[0]["lr"] = lr
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        for i in range(4):
            ref[i] *= 1 - lr * wd
            m[i] += (1 - b1) * (g[i] - m[i])
            v[i] += (1 - b2) * (g[i] ** 2 - v[i])
            ref[i] -= lr / (1 - b1 ** t) * math.atan2(m[i], math.sqrt(v[i]) / math.sqrt(1 - b2 ** t))
        assert p.tolist() == pytest.approx(ref, rel=1e-12, abs=1e-15)
    # A zero gradient throughout leaves only the decay (atan2(0, 0) = 0, no NaN).
    assert torch.isfinite(p).all()


def test_adam_atan2_state_dict_round_trip_continues_identically():
    def make():
        p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
        return p, AdamAtan2([p], lr=0.01)
    p1, opt1 = make()
    for g in ([0.5, 0.1], [0.2, -0.3]):
        p1.grad = torch.tensor(g)
        opt1.step()
    p2, opt2 = make()
    with torch.no_grad():
        p2.copy_(p1)
    opt2.load_state_dict(copy.deepcopy(opt1.state_dict()))  # as through torch.save/load
    for p, opt in ((p1, opt1), (p2, opt2)):
        p.grad = torch.tensor([-0.4, 0.7])
        opt.step()
    assert torch.equal(p1, p2)


def test_sparse_sign_sgd_updates_only_the_batch_rows_with_summed_gradients():
    emb = SparsePuzzleEmbedding(num_embeddings=6, embedding_dim=3, batch_size=4)
    table = torch.arange(18, dtype=torch.float32).view(6, 3) / 10
    emb.weights.copy_(table)
    ids = torch.tensor([1, 3, 1, 4], dtype=torch.int32)
    rows = emb(ids, torch.float32)
    assert torch.equal(rows, table[ids.long()])
    slot_grads = torch.tensor([[1.0, -2.0, 0.5], [0.0, 1.0, -1.0], [-3.0, 2.0, -0.5], [0.0, 0.0, 0.0]])
    (rows * slot_grads).sum().backward()
    opt = SparseSignSGD(emb, lr=0.1, weight_decay=0.5)
    opt.step()

    expected = table.clone()
    decay = 1 - 0.1 * 0.5
    # id 1 appears twice: gradients summed first -> [-2, 0, 0] (sign of the sum, not sum of signs)
    expected[1] = table[1] * decay - 0.1 * torch.tensor([-1.0, 0.0, 0.0])
    expected[3] = table[3] * decay - 0.1 * torch.tensor([0.0, 1.0, -1.0])
    expected[4] = table[4] * decay  # in the batch with zero gradient: decay only
    torch.testing.assert_close(emb.weights, expected, rtol=0, atol=1e-7)
    assert torch.equal(emb.weights[[0, 2, 5]], table[[0, 2, 5]])  # rows not in the batch: untouched

    opt.zero_grad()
    assert emb.local_weights.grad is None
    opt.step()  # nothing recorded since: no change
    torch.testing.assert_close(emb.weights, expected, rtol=0, atol=1e-7)
    state = opt.state_dict()
    assert state["param_groups"][0]["lr"] == 0.1


def test_sparse_sign_sgd_through_the_model_touches_only_the_batch_rows():
    model = tiny_model()
    before = model.puzzle_emb.weights.clone()
    batch = random_batch(3)
    carry, outputs = model(model.initial_carry(batch), batch)
    outputs["logits"].square().sum().backward()
    SparseSignSGD(model.puzzle_emb, lr=0.01, weight_decay=0.1).step()
    touched = (model.puzzle_emb.weights != before).any(dim=1)
    assert set(torch.nonzero(touched).flatten().tolist()) == set(batch["puzzle_identifiers"].tolist())


def test_lr_schedule_warmup_then_cosine_to_min_ratio():
    kw = dict(base_lr=1.0, warmup_steps=10, total_steps=110)
    assert lr_at(0, min_ratio=0.1, **kw) == 0.0
    assert lr_at(5, min_ratio=0.1, **kw) == pytest.approx(0.5)
    assert lr_at(10, min_ratio=0.1, **kw) == pytest.approx(1.0)
    assert lr_at(60, min_ratio=0.1, **kw) == pytest.approx(0.1 + 0.9 * 0.5)   # half way: cos(pi/2) = 0
    assert lr_at(35, min_ratio=0.0, **kw) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert lr_at(110, min_ratio=0.1, **kw) == pytest.approx(0.1)
    assert lr_at(500, min_ratio=0.1, **kw) == pytest.approx(0.1)  # stays at the minimum
    assert lr_at(70, min_ratio=1.0, **kw) == pytest.approx(1.0)  # constant after warmup


def _two_rank_worker(rank: int, init_file: str, out_dir: str) -> None:
    import torch.distributed as dist
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        emb = SparsePuzzleEmbedding(num_embeddings=5, embedding_dim=2, batch_size=2)
        emb.weights.copy_(torch.arange(10, dtype=torch.float32).view(5, 2))
        ids = torch.tensor([[0, 2], [2, 4]][rank], dtype=torch.int32)
        grads = torch.tensor([[[1.0, -1.0], [0.5, 0.0]], [[-2.0, 3.0], [1.0, 1.0]]][rank])
        (emb(ids, torch.float32) * grads).sum().backward()
        SparseSignSGD(emb, lr=0.5, weight_decay=0.0).step()
        torch.save(emb.weights, f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_sparse_sign_sgd_gathers_rows_across_ranks(tmp_path):
    """Two real gloo ranks (slow: spawns processes); the fast test below fakes the collective."""
    import torch.multiprocessing as mp
    mp.spawn(_two_rank_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=2)
    tables = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    expected = torch.arange(10, dtype=torch.float32).view(5, 2)
    expected[0] -= 0.5 * torch.tensor([1.0, -1.0])
    expected[2] -= 0.5 * torch.tensor([-1.0, 1.0])   # 0.5 + (-2) and 0 + 3 summed across ranks
    expected[4] -= 0.5 * torch.tensor([1.0, 1.0])
    for table in tables:  # both ranks apply the same, global update
        assert torch.equal(table, expected)


def test_sparse_sign_sgd_applies_the_other_ranks_rows_too(monkeypatch):
    import torch.distributed as dist
    other_ids = torch.tensor([2, 4], dtype=torch.int32)
    other_grads = torch.tensor([[-2.0, 3.0], [1.0, 1.0]])

    def fake_all_gather(outputs, tensor):  # rank 0 of 2: [ours, rank 1's]
        outputs[0].copy_(tensor)
        outputs[1].copy_(other_ids if tensor.dtype == torch.int32 else other_grads)

    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    monkeypatch.setattr(dist, "all_gather", fake_all_gather)
    emb = SparsePuzzleEmbedding(num_embeddings=5, embedding_dim=2, batch_size=2)
    emb.weights.copy_(torch.arange(10, dtype=torch.float32).view(5, 2))
    (emb(torch.tensor([0, 2], dtype=torch.int32), torch.float32) * torch.tensor([[1.0, -1.0], [0.5, 0.0]])).sum().backward()
    SparseSignSGD(emb, lr=0.5, weight_decay=0.0).step()
    expected = torch.arange(10, dtype=torch.float32).view(5, 2)
    expected[0] -= 0.5 * torch.tensor([1.0, -1.0])
    expected[2] -= 0.5 * torch.tensor([-1.0, 1.0])
    expected[4] -= 0.5 * torch.tensor([1.0, 1.0])
    assert torch.equal(emb.weights, expected)


def per_tensor_adam_atan2(params: list[torch.Tensor], grads_per_step: list[list[torch.Tensor | None]],
                          lrs: list[float], betas=(0.9, 0.95), wd: float = 0.1) -> list[torch.Tensor]:
    """The oracle: the per-tensor formula, one tensor at a time with torch.atan2 (the update
    before the foreach rewrite); a parameter's step count advances only when it has a gradient."""
    b1, b2 = betas
    params = [p.detach().clone() for p in params]
    m = [torch.zeros_like(p) for p in params]
    v = [torch.zeros_like(p) for p in params]
    steps = [0] * len(params)
    for grads, lr in zip(grads_per_step, lrs):
        for i, g in enumerate(grads):
            if g is None:
                continue
            steps[i] += 1
            t = steps[i]
            params[i].mul_(1 - lr * wd)
            m[i].lerp_(g, 1 - b1)
            v[i].lerp_(g.square(), 1 - b2)
            params[i].add_(torch.atan2(m[i], v[i].sqrt() / math.sqrt(1 - b2 ** t)), alpha=-lr / (1 - b1 ** t))
    return params


@pytest.mark.parametrize("foreach_atan", [False, True], ids=["cpu-route", "gpu-route"])
def test_foreach_adam_atan2_equals_the_per_tensor_update(foreach_atan):
    gen = torch.Generator().manual_seed(0)
    shapes = [(7, 5), (5,), (3, 4, 2), (1,)]
    start = [torch.randn(s, generator=gen) for s in shapes]
    grads_per_step, lrs = [], [0.01, 0.03, 0.02, 0.05, 0.01]
    for step in range(len(lrs)):
        grads = [torch.randn(s, generator=gen) * 10.0 ** float(torch.randint(-3, 3, (), generator=gen)) for s in shapes]
        grads[0][0] = 0.0           # a row that never has a gradient: m = v = 0, update 0 (no NaN)
        grads[2][0, 0, 0] = 1e-30   # g^2 underflows to 0 in float32: atan2(m, 0) = +-pi/2
        if step in (0, 3):
            grads[3] = None         # first trained at step 2: its own step count and bias correction
        grads_per_step.append(grads)
    expected = per_tensor_adam_atan2(start, grads_per_step, lrs)

    params = [torch.nn.Parameter(p.clone()) for p in start]
    opt = AdamAtan2(params, lr=lrs[0], betas=(0.9, 0.95), weight_decay=0.1, foreach_atan=foreach_atan)
    for grads, lr in zip(grads_per_step, lrs):
        opt.param_groups[0]["lr"] = lr
        for p, g in zip(params, grads):
            p.grad = None if g is None else g.clone()
        opt.step()
    for got, want in zip(params, expected):
        assert torch.isfinite(got).all()
        torch.testing.assert_close(got.detach(), want, rtol=1e-6, atol=1e-7)
    assert opt.state[params[3]]["step"] == 3 and opt.state[params[0]]["step"] == 5


def unique_sign_sgd(table: torch.Tensor, ids: torch.Tensor, grads: torch.Tensor, lr: float, wd: float) -> torch.Tensor:
    """The oracle: the update before the fixed-size rewrite (unique + index_add over the
    distinct ids; its output size depends on the data)."""
    table = table.clone()
    unique_ids, slot_to_row = ids.long().unique(return_inverse=True)
    summed = torch.zeros(len(unique_ids), grads.shape[1], dtype=grads.dtype).index_add_(0, slot_to_row, grads)
    table[unique_ids] = table[unique_ids] * (1 - lr * wd) - lr * torch.sign(summed)
    return table


@pytest.mark.parametrize("ids", [[3, 1, 3, 0, 1, 3, 5, 2],     # repeated
                                 [6, 0, 2, 5, 1, 3, 7, 4],     # unique
                                 [4, 4, 4, 4, 4, 4, 4, 4]],    # all equal
                         ids=["repeated", "unique", "all-equal"])
def test_fixed_size_sign_sgd_equals_the_unique_based_update(ids):
    gen = torch.Generator().manual_seed(1)
    emb = SparsePuzzleEmbedding(num_embeddings=9, embedding_dim=4, batch_size=len(ids))
    table = torch.randn(9, 4, generator=gen)
    emb.weights.copy_(table)
    ids = torch.tensor(ids, dtype=torch.int32)
    # Integer-valued gradients: every sum is exact in any order, and some rows sum to exactly 0.
    slot_grads = torch.randint(-2, 3, (len(ids), 4), generator=gen).float()
    (emb(ids, torch.float32) * slot_grads).sum().backward()
    SparseSignSGD(emb, lr=0.1, weight_decay=0.5).step()
    assert torch.equal(emb.weights, unique_sign_sgd(table, ids, slot_grads, lr=0.1, wd=0.5))
