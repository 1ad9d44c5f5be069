"""The exercises' samples span what each task allows (torchmech/learn/exercises/spans.py): every exercise declares
the spans its task text allows, and its drawn samples cover every span it declares — each checked on what the
samples make, so a span dropped from the samples fails here."""

from __future__ import annotations

import dataclasses

import pytest

from torchmech.learn.exercises import EXERCISES, exercise
from torchmech.learn.exercises.spans import SPANS, drawn, mentioned, uncovered, undeclared

pytestmark = pytest.mark.chapter


def test_every_exercise_declares_the_spans_its_task_allows() -> None:
    """Each exercise declares at least the spans its task text (or its signature's optional arguments) allows,
    and only spans of the vocabulary."""
    assert {e.name: undeclared(e) for e in EXERCISES if undeclared(e)} == {}
    assert {e.name: [s for s in e.spans if s not in SPANS] for e in EXERCISES if set(e.spans) - set(SPANS)} == {}
    assert all(e.spans for e in EXERCISES)


def test_every_declared_span_is_covered_by_the_samples() -> None:
    """Each exercise's drawn samples cover every span it declares."""
    assert {e.name: uncovered(e) for e in EXERCISES if uncovered(e)} == {}


def test_the_span_checks_read_the_samples() -> None:
    """A span check fails on samples that lack the span: §1's samples of one dtype each, before the mixed ones,
    neither promote dtypes nor let c alone set the result's shape; glorot_bound's samples that always give gain
    do not test its default; §9's first sample alone runs 2 epochs."""
    z = exercise("compute_z")
    same_dtype = dataclasses.replace(z, samples=lambda: z.samples()[:7])
    assert set(uncovered(same_dtype)) == {"empty", "broadcasting", "dtype promotion"}
    g = exercise("glorot_bound")
    assert uncovered(dataclasses.replace(g, samples=lambda: [s for s in g.samples() if len(s.make()) == 3])) == [
        "defaults and other values"]
    m = exercise("MultiLayerPerceptron")
    assert "≥ 3 epochs" in uncovered(dataclasses.replace(m, samples=lambda: m.samples()[:1]))
    assert "broadcasting" in mentioned(z) and "defaults and other values" in mentioned(g)
    assert len(drawn(z)) == len(z.samples())  # the chapter runs are no drawn samples


def test_the_lightning_samples_change_accuracy_from_epoch_to_epoch() -> None:
    """On the reference, the ≥ 3-epoch sample's per-epoch train and validation accuracies differ between epochs,
    and its two test runs differ: a metric never reset after logging (a running accuracy) shows in every stage."""
    from torchmech.chapter.implementation import REFERENCE

    m = exercise("MultiLayerPerceptron")
    sample = next(s for s in m.samples() if s.extra["epochs"] >= 3)
    obs = m.observe(REFERENCE.MultiLayerPerceptron, sample)
    for stage in ("train", "valid", "test"):
        values = [v for _, v in obs[f"{stage}_acc as logged (step, value)"]]
        running = [sum(values[: k + 1]) / (k + 1) for k in range(len(values))]
        assert len(values) >= 2 and any(abs(a - b) > 1e-6 for a, b in zip(values, running, strict=True)), stage
