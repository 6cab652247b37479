"""Test-time compute in `hrm eval` (issue 13): candidate generators, rankers, the per-segment curve,
seeding, the protocol object and the errors. The oracles are the ACT wrapper's own forward
(HrmAct, as training and plain evaluation run it), hand computations and a brute-force ranker."""
from __future__ import annotations

import json
import math

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from tests.conftest import REPO, assert_one_line_error, run_hrm
from tests.eval_helpers import write_grid_dataset
from tests.sudoku4_data import write_sudoku4

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A briefly trained smoke model that solves some but not all of 64 test puzzles, and whose Q
    head halts them at different segments (at 120 steps: 47 at the first, 11 never; at 100 none halts)."""
    root = tmp_path_factory.mktemp("ttc")
    write_sudoku4(root / "data", train_size=128, test_size=64, blanks=2)
    run_hrm("train", "--data", root / "data", "--out", root / "run", "--config", REPO / "examples" / "smoke.yaml",
            "max_steps=120", "lr_warmup_steps=2", "eval_interval=100000", "--quiet", check=True)
    return root


def cli_json(trained, *args, table=None):
    extra = ["--predictions", table] if table is not None else []
    result = run_hrm("eval", "--checkpoint", trained / "run", "--data", trained / "data", "--json", "--quiet",
                     *extra, *map(str, args), check=True)
    return json.loads(result.stdout)


def eval_json(trained, table=None, out=None, rank="votes", **candidates):
    """What `hrm eval --json` prints (the CLI is a thin layer over `evaluate`), in this process."""
    from hrm.eval.candidate_spec import CandidateSpec
    from hrm.eval.run import evaluate

    summary = evaluate([trained / "run"], trained / "data", predictions=[table] if table else [], out=out,
                       device="cpu", candidates=CandidateSpec(**candidates), rank=rank)
    return json.loads(json.dumps(summary))


def read_table(path):
    table = pq.read_table(path)
    return (table.column("example").to_numpy(), np.stack(table.column("prediction").to_numpy(zero_copy_only=False)),
            table.column("q_halt").to_numpy())


def act_forward(trained, segments: int):
    """The oracle: every test example through HrmAct's own forward (what training and the plain
    prediction loop run), `segments` segments; per segment the argmax tokens, q_halt, q_continue."""
    from hrm.builders.dataset import open_dataset
    from hrm.eval.inference import load_for_inference

    dataset = open_dataset(trained / "data")
    model, _ = load_for_inference(trained / "run", device="cpu", dataset=dataset)
    model.config.halt_max_steps = segments
    puzzle_set = dataset.split("test").set("all")
    inputs, labels = puzzle_set.rows(0, puzzle_set.num_examples)
    from hrm.eval.batches import to_batch

    batch = {key: torch.as_tensor(value) for key, value in
             to_batch(inputs, labels, np.zeros(len(inputs), np.int32), 0).items()}
    carry = model.initial_carry(batch)
    per_segment = []
    with torch.no_grad():
        for _ in range(segments):
            carry, outputs = model(carry, batch)
            per_segment.append((outputs["logits"].argmax(-1).numpy().astype(np.uint8),
                                outputs["q_halt_logits"].numpy(), outputs["q_continue_logits"].numpy()))
    return per_segment, labels


def exact(predictions: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return (predictions == labels).all(axis=1)


def test_one_plain_candidate_is_plain_evaluation(trained, tmp_path):
    plain = cli_json(trained, table=tmp_path / "plain.parquet")
    one = cli_json(trained, "--samples", 1, "--noise", 0, "--restarts", 1, "--init-std", 0, "--seed", 7,
                   table=tmp_path / "one.parquet")
    (segments, labels) = act_forward(trained, 8)  # the smoke preset's halt_max_steps
    tokens, q_halt, _ = segments[-1]
    for name in ("plain", "one"):
        rows, predictions, q = read_table(tmp_path / f"{name}.parquet")
        assert np.array_equal(rows, np.arange(64))
        assert np.array_equal(predictions, tokens)
        assert np.array_equal(q, q_halt.astype(np.float32))
    solved = exact(tokens, labels).mean()
    assert 0 < solved < 1  # not a 0 == 0 comparison
    for key in ("exact_accuracy", "token_accuracy", "pass@1", "pass@2", "valid_accuracy", "accuracy_by_segment"):
        assert one[key] == plain[key], key
    assert plain["exact_accuracy"] == pytest.approx(solved)


def test_restarts_without_noise_repeat_the_plain_candidate(trained, tmp_path):
    """K = 3 restarts of std 0 are three copies of the plain trajectory, run in one batch."""
    eval_json(trained, restarts=3, table=tmp_path / "three.parquet")
    rows, predictions, q = read_table(tmp_path / "three.parquet")
    (segments, _) = act_forward(trained, 8)
    tokens, q_halt, _ = segments[-1]
    assert np.array_equal(rows, np.repeat(np.arange(64), 3))
    assert np.array_equal(predictions, np.repeat(tokens, 3, axis=0))
    assert np.array_equal(q, np.repeat(q_halt.astype(np.float32), 3))


def test_curve_points_are_plain_evaluation_at_that_many_segments(trained):
    summary = eval_json(trained, steps=10)  # beyond the trained 8 segments
    curve = summary["accuracy_by_segment"]
    assert len(curve) == 10 and curve[-1] == summary["pass@1"]
    segments, labels = act_forward(trained, 10)
    expected = [exact(tokens, labels).mean() for tokens, _, _ in segments]
    assert curve == pytest.approx(expected, abs=1e-12)
    assert len(set(expected)) > 1  # the curve moves
    assert eval_json(trained, steps=3)["pass@1"] == pytest.approx(expected[2], abs=1e-12)
    assert summary["protocol"]["segments"] == 10


def test_halt_on_q_keeps_each_candidate_where_its_q_head_said_halt(trained, tmp_path):
    eval_json(trained, steps=8, halt="q", table=tmp_path / "q.parquet")
    _, predictions, q = read_table(tmp_path / "q.parquet")
    segments, _ = act_forward(trained, 8)
    halts = np.stack([q_halt > q_continue for _, q_halt, q_continue in segments])  # [segment, example]
    stop = np.where(halts.any(axis=0), halts.argmax(axis=0), 7)  # first halting segment, else the last
    assert len(set(stop.tolist())) > 1  # some candidates halt before others
    expected = np.stack([segments[s][0][i] for i, s in enumerate(stop)])
    assert np.array_equal(predictions, expected)
    assert np.array_equal(q, np.array([segments[s][1][i] for i, s in enumerate(stop)], np.float32))


def test_sampling_is_seeded(trained, tmp_path):
    tables = {}
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        eval_json(trained, samples=4, noise=0.5, restarts=2, init_std=0.5, seed=seed,
                  table=tmp_path / f"{name}.parquet")
        tables[name] = read_table(tmp_path / f"{name}.parquet")
    assert np.array_equal(tables["a"][0], np.repeat(np.arange(64), 8))
    assert all(np.array_equal(x, y) for x, y in zip(tables["a"], tables["b"]))
    assert not np.array_equal(tables["a"][2], tables["c"][2])
    # the noise is real: the 8 candidates of an example are not all alike
    q = tables["a"][2].reshape(64, 8)
    assert (q.std(axis=1) > 0).all()


def test_protocol_travels_with_the_score(trained, tmp_path):
    out = tmp_path / "out"
    summary = eval_json(trained, samples=2, noise=0.1, steps=4, rank="max_q", out=out)
    protocol = summary["protocol"]
    assert protocol["split"] == "test" and protocol["items"] == 64 and protocol["subset"] is None
    assert protocol["samples"] == {"K": 2, "noise": 0.1} and protocol["restarts"] == {"K": 1, "init_std": 0.0}
    assert protocol["segments"] == 4 and protocol["ranker"] == "max_q" and protocol["halt"] == "all"
    assert protocol["checkpoints"] == [str(trained / "run")] and protocol["predictions"] == 128
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["protocol"] == protocol and metrics["accuracy_by_segment"] == summary["accuracy_by_segment"]
    # rescoring the table keeps what the table records of how it was made; the residual ranker
    # works from the table's residual column
    rescored = json.loads(run_hrm("eval", "--predictions", out / "predictions.parquet", "--data", trained / "data",
                                  "--json", "--rank", "residual", check=True).stdout)
    assert rescored["protocol"]["samples"] == {"K": 2, "noise": 0.1} and rescored["protocol"]["ranker"] == "residual"
    text = run_hrm("eval", "--predictions", out / "predictions.parquet", "--data", trained / "data",
                   check=True).stdout
    assert "protocol: test split, 64 items" in text and "samples K=2 noise=0.1" in text and "ranker votes" in text
    # hrm show draws the per-segment curve of an eval folder
    shown = json.loads(run_hrm("show", out, "--json", check=True).stdout)
    assert shown["accuracy_by_segment"] == summary["accuracy_by_segment"] and shown["protocol"] == protocol
    assert (out / "segments.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = run_hrm("show", out, check=True).stdout.splitlines()
    assert lines[0].split() == ["segment", "pass@1"] and len(lines) == 5
    assert lines[4].split()[:2] == ["4", f"{summary['accuracy_by_segment'][3]:.2%}"]
    scored = tmp_path / "scored"  # scored from a table: no curve to draw
    run_hrm("eval", "--predictions", out / "predictions.parquet", "--data", trained / "data", "--out", scored,
            check=True)
    assert_one_line_error(run_hrm("show", scored), "no accuracy_by_segment")


@pytest.mark.parametrize("args, fragment", [
    (["--samples", "0"], "--samples"), (["--restarts", "0"], "--restarts"),
    (["--samples", "2", "--noise", "-0.1"], "--noise"), (["--init-std", "-1"], "--init-std"),
    (["--steps", "0"], "--steps"), (["--halt", "sometimes"], "--halt"), (["--rank", "best"], "--rank")])
def test_bad_values_give_one_line(trained, args, fragment):
    result = run_hrm("eval", "--checkpoint", trained / "run", "--data", trained / "data", "--quiet", *args)
    assert_one_line_error(result, fragment)


def test_checkpoint_for_another_dataset_is_refused_with_candidates(trained, tmp_path):
    grid = np.ones((1, 36), np.uint8)
    write_grid_dataset(tmp_path / "maze", "maze", grid, grid, vocab_size=6)
    result = run_hrm("eval", "--checkpoint", trained / "run", "--data", tmp_path / "maze", "--samples", "4",
                     "--noise", "0.1", "--quiet")
    assert_one_line_error(result, "does not match")


def test_residual_ranker_needs_residuals(tmp_path):
    from tests.eval_helpers import write_table

    inputs = np.array([[1, 2, 3, 4]], np.uint8)
    write_grid_dataset(tmp_path / "data", "sudoku", inputs, inputs + 1)
    write_table(tmp_path / "t.parquet", [(0, inputs[0] + 1, 1.0)], seq_len=4)
    result = run_hrm("eval", "--predictions", tmp_path / "t.parquet", "--data", tmp_path / "data", "--rank", "residual")
    assert_one_line_error(result, "--rank residual")
    result = run_hrm("eval", "--predictions", tmp_path / "t.parquet", "--data", tmp_path / "data", "--samples", "4")
    assert_one_line_error(result, "--checkpoint")


# ---------------------------------------------------------------------------------------------
# Rankers on hand-made candidates, against a brute-force ranking written here.

def sig(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def oracle_order(votes: list[tuple[int, float, float]], rank: str) -> list[int]:
    """votes: (answer, q_halt, residual) of one key -> its distinct answers, best first."""
    answers = sorted({a for a, _, _ in votes})
    def score(answer):
        mine = [(q, r) for a, q, r in votes if a == answer]
        count = len(mine)
        confidence = sum(sig(q) for q, _ in mine)  # ties: equal up to float rounding (12 decimals)
        if rank == "votes":
            return (-count, -round(confidence / count, 12), answer)
        primary = {"max_q": -max(q for q, _ in mine), "mean_q": -round(confidence / count, 12),
                   "residual": min(r for _, r in mine), "q_votes": -round(confidence, 12)}[rank]
        return (primary, -count, answer)
    return sorted(answers, key=score)


RANKS = ("votes", "max_q", "mean_q", "residual", "q_votes")


def test_each_ranker_picks_its_candidate():
    """One key, four answers; each ranker has a different winner (worked out by hand):
    A: 3 votes, q -2,-2,-2    most votes
    B: 1 vote,  q 4           highest q (and mean q)
    C: 2 votes, q 1.5, 1.5    q-weighted votes: 2 x 0.818 = 1.64 > A's 3 x 0.119 = 0.36, B's 0.982
    D: 1 vote,  q -3, residual 0.001 (every other residual 0.5)"""
    from hrm.eval.vote import vote

    rows = [(0, -2, .5), (0, -2, .5), (0, -2, .5), (1, 4, .5), (2, 1.5, .5), (2, 1.5, .5), (3, -3, .001)]
    answers, q, residual = (np.array(column) for column in zip(*rows))
    winners = {}
    for rank in RANKS:
        votes = vote(np.zeros(len(rows), np.int64), answers.astype(np.uint64), q, residual, rank)
        winners[rank] = int(votes.answer[votes.rank == 0][0])
    assert winners == {"votes": 0, "max_q": 1, "mean_q": 1, "residual": 3, "q_votes": 2}


@pytest.mark.parametrize("rank", RANKS)
def test_rankers_match_a_brute_force_ranking(rank):
    from hrm.eval.vote import vote

    rng = np.random.default_rng(len(rank))
    keys = rng.integers(0, 30, 400)
    answers = rng.integers(0, 4, 400)
    q = rng.choice([-1.0, 0.0, 0.5, 2.0], 400)  # repeated values: ties are exercised
    residual = rng.choice([0.1, 0.2, 0.3], 400)
    votes = vote(keys, answers.astype(np.uint64), q, residual, rank)
    for key in np.unique(keys):
        mine = [(int(a), float(x), float(r)) for k, a, x, r in zip(keys, answers, q, residual) if k == key]
        chosen = votes.key == key
        ours = [int(a) for a in votes.answer[chosen][np.argsort(votes.rank[chosen])]]
        assert ours == oracle_order(mine, rank), (key, mine)


def test_candidates_run_in_one_batch_chunked_to_the_bound():
    """B x K rows per forward, at most max_rows (whole examples); candidates of one example side
    by side; without noise every chunking gives the same answers."""
    from tests.test_model import random_batch, tiny_model
    from hrm.eval.candidate_spec import CandidateSpec
    from hrm.eval.candidates import run_candidates

    model = tiny_model(halt_max_steps=2).eval()
    batch = random_batch(0, size=5)
    seen = []
    original = model.inner.forward
    model.inner.forward = lambda z_high, z_low, rows: (seen.append(rows["inputs"].shape[0]), original(z_high, z_low, rows))[1]
    spec = CandidateSpec(restarts=3)
    generator = torch.Generator().manual_seed(0)
    big = run_candidates(model, batch, spec, generator, max_rows=100)
    assert seen == [15, 15]
    seen.clear()
    small = run_candidates(model, batch, spec, generator, max_rows=7)  # 2 examples x 3 per chunk
    assert seen == [6, 6, 6, 6, 3, 3]
    for a, b in zip(big, small):
        assert np.array_equal(a.predictions, b.predictions) and np.allclose(a.q_halt, b.q_halt, atol=1e-12)
    assert np.array_equal(big[-1].predictions[0::3], big[-1].predictions[2::3])


def test_state_residual_is_the_rms_change():
    from hrm.eval.candidates import state_residual

    z = torch.zeros(2, 3, 4)
    high, low = z.clone(), z.clone()
    high[0] += 2.0   # mean square 4
    low[1, 0] += 3.0  # mean square 9 * 4 / 12 = 3
    assert state_residual(z, z, high, low).tolist() == pytest.approx([2.0, math.sqrt(3.0)])
