"""The distilled student: which teacher layers it keeps, and that training brings its sentence
vectors towards the teacher's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from classifier.corpus import load_corpus
from classifier.distill import distill_encoder, spaced_layers
from classifier.encoder import Encoder
from classifier.normalize import normalize


@pytest.mark.parametrize(
    ("teacher", "keep", "layers"),
    [
        (12, 6, [0, 2, 4, 7, 9, 11]),
        (12, 4, [0, 4, 7, 11]),
        (12, 2, [0, 11]),
        (12, 1, [11]),
        (3, 3, [0, 1, 2]),
    ],
)
def test_the_student_keeps_evenly_spaced_layers_with_the_top_one(
    teacher: int, keep: int, layers: list[int]
) -> None:
    assert spaced_layers(teacher, keep) == layers


def test_every_size_keeps_as_many_distinct_layers_as_asked() -> None:
    for keep in range(1, 13):
        chosen = spaced_layers(12, keep)
        assert len(chosen) == keep and chosen[-1] == 11 and chosen == sorted(set(chosen))
    with pytest.raises(ValueError, match="keep = 13"):
        spaced_layers(12, 13)


def test_distillation_brings_the_students_vectors_towards_the_teachers(tmp_path: Path) -> None:
    from classifier.base_model import resolve_base_model

    teacher = resolve_base_model()
    by_lang: dict[str, list[str]] = {}
    for ex in load_corpus(None):
        by_lang.setdefault(ex.lang, []).append(normalize(ex.text))
    texts = [t for items in by_lang.values() for t in items[:2]]
    targets = Encoder(teacher, max_length=64).embed(texts)
    direction = np.random.default_rng(1).standard_normal((targets.shape[1],), dtype=np.float32)

    def student(name: str, epochs: int, learning_rate: float) -> np.ndarray:
        out = distill_encoder(
            teacher,
            texts,
            targets,
            direction,
            tmp_path / name,
            layers=3,
            epochs=epochs,
            learning_rate=learning_rate,
            batch_size=8,
            max_length=64,
            seed=13,
        )
        encoder = Encoder(out, max_length=64)
        assert len(encoder.model.encoder.layer) == 3  # saved and reloaded with its 3 layers
        return encoder.embed(texts)

    untrained = student("cut", 1, 1e-12)
    trained = student("taught", 6, 3e-4)
    before = float(np.mean(np.sum(untrained * targets, axis=1)))
    after = float(np.mean(np.sum(trained * targets, axis=1)))
    assert after > before + 0.02, (before, after)
