"""`hrm trace` (issue 23). Oracles: a float64 recurrence unrolled here from the models' blocks,
numpy's eigenvalues for the participation ratio, hrm eval's own loop (eval.candidates.run_chunk)
and the ACT wrapper's forward for the predictions, brute force for the sudoku rules."""
from __future__ import annotations

import json

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import torch

from hrm.analysis.participation import CovarianceSums, NestedSums, nested_sizes
from hrm.analysis.trace import STATE_OF, UpdateRecorder, run_traced
from hrm.eval.candidate_spec import CandidateSpec
from hrm.eval.candidates import run_chunk
from hrm.eval.metrics import sudoku_conflicts, sudoku_valid
from hrm.eval.subset import choose_subset
from hrm.models.hrm import HrmAct, HrmConfig
from hrm.models.transformer import TransformerConfig, transformer_model
from hrm.models.trm import TrmConfig, trm_model
from tests.conftest import assert_one_line_error, run_hrm
from tests.eval_helpers import write_grid_dataset
from tests.sudoku4_data import all_grids, write_sudoku4
from tests.train_helpers import tiny

pytestmark = pytest.mark.usefixtures("single_thread")

SHAPES = dict(seq_len=16, vocab_size=6, num_puzzle_identifiers=3, batch_size=5)
TINY_ARCH = dict(hidden_size=16, num_heads=2, H_layers=1, L_layers=1, halt_max_steps=3, puzzle_emb_ndim=16)


# ----------------------------------------------------------------------------- participation ratio


def numpy_pr(vectors: np.ndarray) -> float:
    eigenvalues = np.linalg.eigvalsh(np.cov(vectors.T))
    return eigenvalues.sum() ** 2 / (eigenvalues ** 2).sum()


def test_pr_of_k_equal_directions_is_k():
    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.normal(size=(12, 12)))[0]
    for k in (1, 3, 7, 12):
        # +-3 q_i for each of k orthonormal directions: mean 0, covariance 18/(n-1) * sum q_i q_i^T.
        vectors = np.concatenate([3 * basis[:, :k].T, -3 * basis[:, :k].T]) + 5.0  # an offset the mean removes
        sums = CovarianceSums(12, torch.device("cpu"))
        for chunk in np.array_split(vectors, 3):
            sums.add(torch.from_numpy(chunk))
        assert sums.participation_ratio() == pytest.approx(k, rel=1e-9)


def test_pr_equals_numpy_eigenvalues_on_a_known_spectrum():
    rng = np.random.default_rng(1)
    spectrum = np.array([9.0, 4.0, 4.0, 1.0, 0.25, 0.0, 0.0, 0.0])
    basis = np.linalg.qr(rng.normal(size=(8, 8)))[0]
    vectors = (rng.normal(size=(4000, 8)) * np.sqrt(spectrum)) @ basis.T + rng.normal(size=8)
    sums = CovarianceSums(8, torch.device("cpu"))
    sums.add(torch.from_numpy(vectors[:1000]))
    sums.add(torch.from_numpy(vectors[1000:]).float().double())
    assert sums.participation_ratio() == pytest.approx(numpy_pr(vectors), rel=1e-9)
    # and near the population's (sum 18.25)^2 / 98.0625 for this many samples
    assert sums.participation_ratio() == pytest.approx(18.25 ** 2 / (81 + 16 + 16 + 1 + 0.0625), rel=0.05)


def test_nested_sizes():
    assert nested_sizes(1) == [1]
    assert nested_sizes(10) == [1, 2, 5, 10]
    assert nested_sizes(37) == [1, 2, 5, 10, 20, 37]
    assert nested_sizes(100) == [1, 2, 5, 10, 20, 50, 100]


def test_pr_by_items_equals_numpy_on_each_nested_subset():
    """Examples arrive in batches, items out of order and several examples per item; the PR of
    the first k items is numpy's PR of exactly those items' vectors."""
    rng = np.random.default_rng(2)
    items = rng.permutation(np.repeat(np.arange(13), rng.integers(1, 4, size=13)))
    vectors = rng.normal(size=(len(items), 6, 5)) * rng.uniform(0.1, 3, size=5)  # 6 positions per example
    vectors[items < 2] *= np.array([5, 0.1, 0.1, 0.1, 0.1])  # the first items: one dominant direction
    nested = NestedSums(13, 5, torch.device("cpu"))
    for batch in np.array_split(np.arange(len(items)), 4):
        nested.add(torch.from_numpy(vectors[batch]), items[batch])
    assert nested.sizes == [1, 2, 5, 10, 13]
    expected = [numpy_pr(vectors[items < k].reshape(-1, 5)) for k in nested.sizes]
    assert nested.participation_ratios() == pytest.approx(expected, rel=1e-9)
    assert expected[1] < expected[-1]  # the oracle sees the growth the test built in


# ----------------------------------------------------------------------------- sudoku rules


def test_sudoku_conflicts_against_brute_force():
    rng = np.random.default_rng(3)
    grids = all_grids()[rng.choice(288, 60)] + 1
    inputs = np.where(rng.random(grids.shape) < 0.5, grids, 1)
    predictions = grids.copy()
    noisy = rng.random(grids.shape) < 0.12
    predictions[noisy] = rng.integers(0, 6, noisy.sum())
    conflicts = sudoku_conflicts(predictions, inputs)
    for p, given, found in zip(predictions, inputs, conflicts):
        grid = p.reshape(4, 4) - 1
        for r in range(4):
            for c in range(4):
                peers = {(r, j) for j in range(4)} | {(i, c) for i in range(4)} | {
                    (i, j) for i in range(r // 2 * 2, r // 2 * 2 + 2) for j in range(c // 2 * 2, c // 2 * 2 + 2)}
                repeated = any(grid[i, j] == grid[r, c] for i, j in peers - {(r, c)})
                expected = not 1 <= grid[r, c] <= 4 or repeated or (given[r * 4 + c] > 1 and
                                                                    p[r * 4 + c] != given[r * 4 + c])
                assert found[r * 4 + c] == expected
    assert (~conflicts.any(axis=1) == sudoku_valid(predictions, inputs)).all()
    assert conflicts.any() and (~conflicts.any(axis=1)).any()


# ----------------------------------------------------------------------------- the recurrence oracles


def batch_of(seed: int = 0, rows: int = 5) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {"inputs": torch.randint(1, 6, (rows, 16), generator=generator, dtype=torch.int32),
            "labels": torch.randint(2, 6, (rows, 16), generator=generator).long(),
            "puzzle_identifiers": torch.randint(0, 3, (rows,), generator=generator, dtype=torch.int32)}


def double_model(build, config):
    torch.manual_seed(0)
    model = build(config).double().eval()
    with torch.no_grad():  # the zero-initialised Q head would make every q value -5
        model.inner.q_head.weight.normal_(0, 0.3)
    return model


def traced(model, batch, segments):
    sums = {s: NestedSums(1, model.config.hidden_size, torch.device("cpu")) for s in ("high", "low")}
    recorder = UpdateRecorder(model.inner, batch["inputs"].shape[0], True, sums, np.zeros(batch["inputs"].shape[0]))
    answers = run_traced(model, batch, segments, recorder)
    return recorder, answers, sums


def norm(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).norm(dim=1)


def check_against_oracle(recorder, sums, expected, puzzle_len):
    assert [u["module"] for u in recorder.updates] == [e[0] for e in expected]
    for update, (module, residual, tokens, state) in zip(recorder.updates, expected):
        torch.testing.assert_close(update["residual"], residual, rtol=1e-10, atol=0)
        assert torch.equal(update["tokens"], tokens), module
    for state in ("high", "low"):
        vectors = [z[:, puzzle_len:].reshape(-1, z.shape[-1]) for module, _, _, z in expected
                   if STATE_OF[module] == state]
        assert sums[state].total().participation_ratio() == pytest.approx(
            numpy_pr(torch.cat(vectors).numpy()), rel=1e-8)


def test_hrm_trace_equals_a_hand_unrolled_float64_recurrence():
    """Residuals, decoded answers (the paper's extra high pass after each low step, damped like
    a real high step), q values at segment ends and the PR samples, against the blocks run here."""
    config = HrmConfig(**SHAPES, **TINY_ARCH, H_cycles=2, L_cycles=3, damping=0.7)
    model = double_model(HrmAct, config)
    inner, batch, segments, lam = model.inner, batch_of(), 2, 0.7
    recorder, answers, sums = traced(model, batch, segments)

    with torch.no_grad():
        x = inner.input_embeddings(batch["inputs"], batch["puzzle_identifiers"])
        cos_sin, puzzle_len = inner.rotary(), config.puzzle_emb_len
        shape = (5, 16 + puzzle_len, 16)
        z_high, z_low = inner.H_init.expand(shape), inner.L_init.expand(shape)
        step = lambda z, f: z + lam * (f - z)  # noqa: E731
        decode = lambda z: inner.lm_head(z)[:, puzzle_len:].argmax(-1)  # noqa: E731
        expected, q_halt = [], []
        for _ in range(segments):
            for _ in range(config.H_cycles):
                for _ in range(config.L_cycles):
                    new = step(z_low, inner.L_level(z_low, z_high + x, cos_sin))
                    expected.append(("low", norm(new - z_low) / norm(z_low),
                                     decode(step(z_high, inner.H_level(z_high, new, cos_sin))), new))
                    z_low = new
                new = step(z_high, inner.H_level(z_high, z_low, cos_sin))
                expected.append(("high", norm(new - z_high) / norm(z_high), decode(new), new))
                z_high = new
            q_halt.append(inner.q_head(z_high[:, 0])[:, 0])
    check_against_oracle(recorder, sums, expected, puzzle_len)
    ends = [recorder.updates[i] for i in recorder.segment_ends]
    assert recorder.segment_ends == [7, 15]
    for end, q in zip(ends, q_halt):
        torch.testing.assert_close(end["q_halt"], q, rtol=1e-12, atol=0)
    # changed: against the previous update's decode, the first against the initial states' decode
    previous = decode(inner.H_init.expand(shape))
    for update, (_, _, tokens, _) in zip(recorder.updates, expected):
        assert torch.equal(update["changed"], (tokens != previous).sum(-1))
        previous = tokens


def test_trm_trace_equals_a_hand_unrolled_float64_recurrence():
    config = TrmConfig(**SHAPES, **{**TINY_ARCH, "H_layers": 0}, H_cycles=2, L_cycles=2, puzzle_emb_len=2)
    model = double_model(trm_model, config)
    inner, batch, segments = model.inner, batch_of(1), 2
    recorder, answers, sums = traced(model, batch, segments)

    with torch.no_grad():
        x = inner.input_embeddings(batch["inputs"], batch["puzzle_identifiers"])
        cos_sin = inner.rotary()
        shape = (5, 16 + 2, 16)
        answer, latent = inner.H_init.expand(shape), inner.L_init.expand(shape)
        decode = lambda z: inner.lm_head(z)[:, 2:].argmax(-1)  # noqa: E731
        expected = []
        for _ in range(segments * config.H_cycles):
            for _ in range(config.L_cycles):
                new = inner.L_level(latent, answer + x, cos_sin)
                expected.append(("latent", norm(new - latent) / norm(latent), decode(answer), new))
                latent = new
            new = inner.L_level(answer, latent, cos_sin)
            expected.append(("answer", norm(new - answer) / norm(answer), decode(new), new))
            answer = new
    check_against_oracle(recorder, sums, expected, 2)
    assert recorder.segment_ends == [5, 11]


@pytest.mark.parametrize("build,config_class", [(HrmAct, HrmConfig), (trm_model, TrmConfig),
                                                (transformer_model, TransformerConfig)])
def test_tracing_leaves_the_trajectory_unchanged(build, config_class):
    """Every segment's predictions and q_halt equal hrm eval's loop without the observer; the
    decode at each segment's last update equals that segment's prediction; the final predictions
    equal the ACT wrapper's own forward run for halt_max_steps segments in evaluation mode."""
    torch.manual_seed(0)
    model = build(config_class(**SHAPES, **TINY_ARCH)).eval()
    with torch.no_grad():
        model.inner.q_head.weight.normal_(0, 0.3)
    batch, segments = batch_of(2), 3
    plain = [answers.numpy() for answers in run_chunk(model, batch, CandidateSpec(steps=segments), None)]
    recorder, answers, _ = traced(model, batch, segments)
    assert len(recorder.segment_ends) == segments
    for segment, (expected, got, end) in enumerate(zip(plain, answers, recorder.segment_ends)):
        assert np.array_equal(expected.predictions, got), segment
        assert np.array_equal(recorder.updates[end]["tokens"].numpy(), expected.predictions)
        assert np.array_equal(recorder.updates[end]["q_halt"].float().numpy(), expected.q_halt)
    with torch.no_grad():
        carry = model.initial_carry(batch)
        for _ in range(model.config.halt_max_steps):  # == segments: every slot runs them all in eval mode
            carry, outputs = model(carry, batch)
    assert torch.equal(recorder.updates[-1]["tokens"], outputs["logits"].argmax(-1))
    assert model.inner.update_observer is None
    updates_per_segment = {HrmConfig: 2 * 2 + 2, TrmConfig: 3 * 7, TransformerConfig: 1}[config_class]
    assert len(recorder.updates) == segments * updates_per_segment


# ----------------------------------------------------------------------------- the command


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from hrm.train.loop import train

    root = tmp_path_factory.mktemp("trace")
    write_sudoku4(root / "data", train_size=64, test_size=24, blanks=4)
    train(tiny(root / "data", "max_steps=6", "arch.H_cycles=2", "arch.L_cycles=2"), root / "run")
    return root


def test_cli_trace_writes_the_outputs_and_matches_hrm_eval(trained, tmp_path):
    out = tmp_path / "trace"
    result = run_hrm("trace", trained / "run", "--data", trained / "data", "--out", out, "--max-items", "10",
                     "--index", "3", "--index", "20", "--json", "--quiet", check=True)
    summary = json.loads(result.stdout)
    p = summary["protocol"]
    drawn = set(choose_subset(split_of(trained), frames_of(trained), 10, 1, 0).rows["all"].tolist())
    examples = len(drawn | {3, 20})
    assert (p["examples"], p["items"], p["segments"], p["updates_per_segment"]) == (examples, examples, 3, 6)
    assert p["index"] == [3, 20] and p["split"] == "test" and p["seed"] == 0
    assert summary == json.loads((out / "summary.json").read_text())
    assert {f.name for f in out.iterdir()} == {"trace.parquet", "summary.json", "residuals.png", "accuracy.png",
                                               "pr.png", "steps_3.png", "steps_20.png"}
    table = pq.read_table(out / "trace.parquet")
    assert table.num_rows == examples * 3 * 6
    assert set(table.column("example").to_pylist()) == drawn | {3, 20}
    assert len(summary["residual_by_update"]) == len(summary["accuracy_by_update"]) == 18
    ratio = summary["participation_ratio"]
    assert all(ratio[which][state] > 1 for which in ("trained", "untrained") for state in ("high", "low"))
    assert summary["pr_by_items"]["items"] == [1, 2, 5, 10, examples]

    # the decode at each example's last update is hrm eval's answer for it
    run_hrm("eval", "--checkpoint", trained / "run", "--data", trained / "data", "--out", tmp_path / "eval",
            "--quiet", check=True)
    evaluated = pq.read_table(tmp_path / "eval" / "predictions.parquet").to_pydict()
    answers = dict(zip(evaluated["example"], evaluated["prediction"]))
    last = table.filter(pc.equal(table["update"], 18)).to_pydict()
    assert len(last["example"]) == examples
    labels = split_of(trained).set("all").rows(0, 24)[1]
    for example, prediction, exact in zip(last["example"], last["prediction"], last["exact"]):
        assert prediction == answers[example]
        assert exact == (labels[example].tolist() == prediction)

    from hrm.analysis.trace_pictures import draw_all
    from hrm.common import HrmError

    untraced = min(set(range(24)) - drawn - {3, 20})
    with pytest.raises(HrmError, match=f"example {untraced} of test/all was not traced"):
        draw_all(out, summary, [untraced])
    run_hrm("show", out, "--index", "20", "--quiet", check=True)


def split_of(trained):
    from hrm.builders.dataset import open_dataset

    return open_dataset(trained / "data").split("test")


def frames_of(trained):
    from hrm.eval.inverse import SetFrames

    return {"all": SetFrames("sudoku", split_of(trained).set("all"))}


def test_bad_inputs_one_line_nothing_written(trained, tmp_path):
    from hrm.analysis.trace import trace
    from hrm.common import HrmError, UsageError

    out = tmp_path / "trace"
    args = ("--data", trained / "data", "--out", out, "--max-items", "2", "--quiet")
    assert_one_line_error(run_hrm("trace", trained / "run", *args, "--index", "24"), "--index 24", "0..23")
    assert not out.exists()
    other = tmp_path / "maze"
    tokens = np.full((3, 16), 2, np.uint8)
    write_grid_dataset(other, "maze", tokens, tokens, vocab_size=6)
    with pytest.raises(HrmError, match="does not match dataset"):
        trace(trained / "run", other, out, device="cpu")
    with pytest.raises(UsageError, match="--steps must be at least 1"):
        trace(trained / "run", trained / "data", out, steps=0)
    assert not out.exists()
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert_one_line_error(run_hrm("trace", trained / "run", *args, "--force"), "not an hrm trace folder")
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_split_without_solutions_is_traced_but_not_scored(trained, tmp_path):
    from hrm.analysis.trace import trace
    from hrm.builders.dataset import DatasetWriter, atomic_directory, open_dataset

    source = open_dataset(trained / "data").split("test").set("all")
    inputs, _ = source.rows(0, 4)
    with atomic_directory(tmp_path / "unseen") as tmp:
        writer = DatasetWriter(tmp, task="sudoku", seed=0, builder={"hand_made": True})
        split = writer.split("test", seq_len=16, vocab_size=6, pad_id=0, ignore_label_id=0, has_solutions=False)
        split.set().append(inputs, np.zeros_like(inputs), examples_per_puzzle=np.ones(4, np.int64),
                           puzzles_per_group=np.ones(4, np.int64))
        writer.close()
    summary = trace(trained / "run", tmp_path / "unseen", tmp_path / "trace", index=[1], device="cpu")
    assert summary["protocol"]["scored"] is False and summary["exact_accuracy"] is None
    assert all(row["exact"] is None and row["token_accuracy"] is None for row in summary["accuracy_by_update"])
    assert all(row["violations"] is not None for row in summary["accuracy_by_update"])  # needs no solution
    table = pq.read_table(tmp_path / "trace" / "trace.parquet")
    assert table.column("exact").null_count == table.num_rows
    # and again with --force: only a trace folder is replaced
    trace(trained / "run", tmp_path / "unseen", tmp_path / "trace", force=True, device="cpu")
    assert not (tmp_path / "trace" / "steps_1.png").exists()


def test_compare_traces_tabulates_each_trace_and_the_mean_over_seeds(trained, tmp_path):
    """`hrm compare TRACE...`: two HRM seeds and a TRM, traced; each figure against the trace's
    own files (the exact accuracy recomputed from trace.parquet's last update), the group means
    and sample stds against numpy's, and the usage mistakes."""
    from hrm.train.loop import train

    train(tiny(trained / "data", "max_steps=6", "arch.H_cycles=2", "arch.L_cycles=2", "seed=1"), tmp_path / "hrm_s1")
    train(tiny(trained / "data", "max_steps=3", "arch.name=trm", "arch.H_cycles=2", "arch.L_cycles=1"),
          tmp_path / "trm_s0")
    traces = []
    for run in (trained / "run", tmp_path / "hrm_s1", tmp_path / "trm_s0"):
        traces.append(tmp_path / f"trace_{len(traces)}")
        run_hrm("trace", run, "--data", trained / "data", "--out", traces[-1], "--max-items", "6", "--quiet",
                check=True)
    result = json.loads(run_hrm("compare", *traces, "--mean-over", "seed", "--out", tmp_path / "cmp", "--json",
                                check=True).stdout)
    assert "arch.name" in result["differing_keys"] and "seed" in result["differing_keys"]
    for entry, folder in zip(result["traces"], traces):
        summary = json.loads((folder / "summary.json").read_text())
        table = pq.read_table(folder / "trace.parquet")
        last = table.filter(pc.equal(table["update"], pc.max(table["update"]))).column("exact").to_pylist()
        assert entry["figures"]["exact"] == pytest.approx(np.mean(last))
        ratio = summary["participation_ratio"]["trained"]
        assert entry["figures"]["pr_high"] == ratio["high"] and entry["figures"]["pr_low"] == ratio["low"]
        assert entry["figures"]["pr_ratio"] == pytest.approx(ratio["high"] / ratio["low"])
    hrm_group, trm_group = result["grouped"]["groups"]
    assert hrm_group["traces"] == [str(traces[0]), str(traces[1])] and trm_group["traces"] == [str(traces[2])]
    for name in ("exact", "pr_high", "pr_low_untrained", "residual_low"):
        values = [entry["figures"][name] for entry in result["traces"][:2]]
        assert hrm_group["figures"][name]["mean"] == pytest.approx(np.mean(values))
        assert hrm_group["figures"][name]["std"] == pytest.approx(np.std(values, ddof=1))
    assert trm_group["figures"]["pr_high"]["std"] is None  # one trace: no spread
    assert {p.name for p in (tmp_path / "cmp").iterdir()} == {"compare.csv", "curves.png"}
    rows = (tmp_path / "cmp" / "compare.csv").read_text().splitlines()
    assert rows[0].startswith("group,") and len(rows) == 3
    table_text = run_hrm("compare", *traces, check=True).stdout
    assert table_text.startswith("traces\n") and len(table_text.splitlines()) == 5
    # a trace of a run from before a key existed: the key is read as its default (as for runs), so
    # the seeds still group together; a value that is not the default still sets a trace apart
    summary_path = traces[1] / "summary.json"
    summary = json.loads(summary_path.read_text())
    assert summary["protocol"]["run_config"]["arch"].pop("bptt") == 1
    summary_path.write_text(json.dumps(summary))
    regrouped = json.loads(run_hrm("compare", *traces, "--mean-over", "seed", "--json", check=True).stdout)
    assert [g["traces"] for g in regrouped["grouped"]["groups"]] == [[str(traces[0]), str(traces[1])], [str(traces[2])]]
    summary["protocol"]["run_config"]["arch"]["bptt"] = 2
    summary_path.write_text(json.dumps(summary))
    apart = json.loads(run_hrm("compare", *traces, "--mean-over", "seed", "--json", check=True).stdout)
    assert len(apart["grouped"]["groups"]) == 3 and "arch.bptt" in apart["differing_keys"]

    assert_one_line_error(run_hrm("compare", traces[0], trained / "run"), "not both", "is not a trace")
    assert run_hrm("compare", traces[0], trained / "run").returncode == 2
    assert run_hrm("compare", *traces, "--metric", "accuracy").returncode == 2
    assert_one_line_error(run_hrm("compare", *traces, "--mean-over", "foo"), "--mean-over foo")
    assert_one_line_error(run_hrm("compare", traces[0], traces[0]), "given twice")
