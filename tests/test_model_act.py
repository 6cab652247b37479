"""ACT semantics of the HRM wrapper: refill on halt, reset of the carry, exploration minimum,
evaluation runs exactly halt_max_steps segments, the q_continue target from the next segment."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from tests.test_model import BATCH, random_batch, tiny_model


def set_q_bias(model, halt: float, cont: float) -> None:
    """Make the Q head prefer halting (halt > cont) or continuing, whatever the state."""
    with torch.no_grad():
        model.inner.q_head.weight.zero_()
        model.inner.q_head.bias.copy_(torch.tensor([halt, cont]))


def run_segments(model, batches):
    carry = model.initial_carry(batches[0])
    history = []
    for batch in batches:
        carry, outputs = model(carry, batch)
        history.append((carry, outputs))
    return history


def test_busy_slots_keep_their_example_and_halted_slots_refill_from_fresh_states():
    model = tiny_model(halt_max_steps=3)
    set_q_bias(model, -5.0, 5.0)  # never halts by itself: only at halt_max_steps
    batches = [random_batch(seed) for seed in range(5)]
    history = run_segments(model, batches)
    steps = [carry.steps.tolist() for carry, _ in history]
    halted = [carry.halted.tolist() for carry, _ in history]
    assert steps == [[1] * BATCH, [2] * BATCH, [3] * BATCH, [1] * BATCH, [2] * BATCH]
    assert halted == [[False] * BATCH, [False] * BATCH, [True] * BATCH, [False] * BATCH, [False] * BATCH]
    # Segments 1-3 work on batch 0 (batches 1, 2 are ignored: every slot is busy) ...
    for carry, _ in history[:3]:
        assert all(torch.equal(carry.current_data[k], batches[0][k]) for k in batches[0])
    # ... then every slot takes batch 3 and its state restarts: the segment equals the first
    # segment of a brand-new carry on batch 3 (an independent run).
    assert all(torch.equal(history[3][0].current_data[k], batches[3][k]) for k in batches[3])
    fresh_carry, fresh_outputs = model(model.initial_carry(batches[3]), batches[3])
    torch.testing.assert_close(history[3][1]["logits"], fresh_outputs["logits"], rtol=0, atol=0)
    torch.testing.assert_close(history[3][0].z_high, fresh_carry.z_high, rtol=0, atol=0)


def test_only_halted_slots_are_refilled():
    model = tiny_model(halt_max_steps=8)
    set_q_bias(model, -5.0, 5.0)
    first, second = random_batch(10), random_batch(11)
    carry, _ = model(model.initial_carry(first), first)
    carry = dataclasses.replace(carry, halted=torch.tensor([True, False, True]))
    carry, _ = model(carry, second)
    for key in first:
        assert torch.equal(carry.current_data[key][[0, 2]], second[key][[0, 2]])
        assert torch.equal(carry.current_data[key][1], first[key][1])
    assert carry.steps.tolist() == [1, 2, 1]


def test_q_halt_above_q_continue_halts_after_one_segment_in_training():
    model = tiny_model(halt_max_steps=6)
    set_q_bias(model, 5.0, -5.0)
    batch = random_batch(0)
    carry, outputs = model(model.initial_carry(batch), batch)
    assert carry.halted.all() and carry.steps.tolist() == [1] * BATCH
    assert "target_q_continue" in outputs


def halting_steps(model, slots: int, segments: int) -> list[int]:
    """The step at which each slot first halts (0 = never within `segments`)."""
    batch = random_batch(0, size=slots)
    carry = model.initial_carry(batch)
    first_halt = torch.zeros(slots, dtype=torch.int32)
    for _ in range(segments):
        carry, _ = model(carry, batch)
        newly = carry.halted & (first_halt == 0)
        first_halt[newly] = carry.steps[newly]
    return first_halt.tolist()


SMALL = dict(H_cycles=1, L_cycles=1, H_layers=1, L_layers=1)  # many slots: keep each one cheap


def test_exploration_forces_a_minimum_of_two_to_halt_max_steps_segments():
    max_steps = 5
    torch.manual_seed(0)
    model = tiny_model(halt_max_steps=max_steps, halt_exploration_prob=1.0, **SMALL)
    set_q_bias(model, 5.0, -5.0)  # the Q head wants to halt at once
    steps = halting_steps(model, slots=150, segments=max_steps)
    assert min(steps) >= 2 and max(steps) <= max_steps  # never after 1 segment, never beyond max
    assert set(steps) == set(range(2, max_steps + 1))

    model = tiny_model(halt_max_steps=max_steps, halt_exploration_prob=0.0, **SMALL)
    set_q_bias(model, 5.0, -5.0)
    assert set(halting_steps(model, slots=50, segments=max_steps)) == {1}  # the minimum is 1

    torch.manual_seed(1)
    model = tiny_model(halt_max_steps=max_steps, halt_exploration_prob=0.5, **SMALL)
    set_q_bias(model, 5.0, -5.0)
    at_once = halting_steps(model, slots=200, segments=max_steps).count(1) / 200
    assert 0.4 < at_once < 0.6  # a slot explores with probability 0.5


def test_evaluation_runs_exactly_halt_max_steps_segments():
    max_steps = 4
    model = tiny_model(halt_max_steps=max_steps, halt_exploration_prob=1.0).eval()
    set_q_bias(model, 5.0, -5.0)  # would halt at once in training
    batches = [random_batch(seed) for seed in range(max_steps + 1)]
    with torch.no_grad():
        history = run_segments(model, batches)
    for segment, (carry, outputs) in enumerate(history[:max_steps], start=1):
        assert carry.steps.tolist() == [segment] * BATCH
        assert carry.halted.tolist() == [segment == max_steps] * BATCH
        assert "target_q_continue" not in outputs
        assert all(torch.equal(carry.current_data[k], batches[0][k]) for k in batches[0])
    assert history[max_steps][0].steps.tolist() == [1] * BATCH  # then the next batch starts


@pytest.mark.parametrize("steps_before", [1, 3])  # 3: this segment is the last (halt_max_steps 4)
def test_q_continue_target_comes_from_the_next_segment(steps_before):
    model = tiny_model(halt_max_steps=4)  # tiny_model gives the Q head random weights
    with torch.no_grad():
        model.inner.q_head.bias.copy_(torch.tensor([0.3, -0.2]))
    batch = random_batch(7)
    carry, _ = model(model.initial_carry(batch), batch)
    carry = dataclasses.replace(carry, steps=torch.full((BATCH,), steps_before, dtype=torch.int32),
                                halted=torch.zeros(BATCH, dtype=torch.bool))
    after, outputs = model(carry, batch)

    # Oracle: actually run the next segment from the returned carry (as busy slots).
    model.eval()
    with torch.no_grad():
        _, following = model(dataclasses.replace(after, halted=torch.zeros(BATCH, dtype=torch.bool)), batch)
    q_halt, q_continue = following["q_halt_logits"], following["q_continue_logits"]
    if steps_before + 1 >= 4:
        expected = torch.sigmoid(q_halt)                           # no "continue" after the last step
    else:
        expected = torch.sigmoid(torch.maximum(q_halt, q_continue))
    assert not torch.allclose(torch.sigmoid(q_halt), torch.sigmoid(torch.maximum(q_halt, q_continue)))
    torch.testing.assert_close(outputs["target_q_continue"], expected, rtol=1e-12, atol=1e-12)
