"""The character n-gram model and its blend with the transformer head."""

from __future__ import annotations

import json

import numpy as np
import pytest

from classifier.corpus import load_corpus
from classifier.metrics import roc_auc
from classifier.model import Head
from classifier.ngrams import FILE, Blend, NgramModel, choose_blend, choose_cascade
from classifier.normalize import normalize
from vigie.errors import VigieError


@pytest.fixture(scope="module")
def fitted() -> tuple[NgramModel, list[str], list[int]]:
    items = load_corpus()
    train = [ex for ex in items if ex.split == "train"][::3]  # every language
    dev = [ex for ex in items if ex.split == "dev"][::2]
    model = NgramModel.fit(
        [normalize(ex.text) for ex in train],
        [ex.label for ex in train],
        [normalize(ex.text) for ex in dev],
        [ex.label for ex in dev],
    )
    return model, [normalize(ex.text) for ex in dev], [ex.label for ex in dev]


def test_saved_model_scores_exactly_as_the_fitted_one(fitted, tmp_path):
    model, texts, _ = fitted
    model.save(tmp_path)
    data = json.loads((tmp_path / FILE).read_text(encoding="utf-8"))
    assert set(data) == {"ngram_range", "vocabulary", "idf", "coef", "intercept"}  # plain data, no pickle
    loaded = NgramModel.load(tmp_path)
    assert loaded is not None
    np.testing.assert_array_equal(loaded.logits(texts), model.logits(texts))
    assert loaded.logits([]).shape == (0,)


def test_older_classifiers_have_no_ngram_model(tmp_path):
    assert NgramModel.load(tmp_path) is None


def test_ngram_model_alone_separates_dev_adverts(fitted):
    model, texts, labels = fitted
    # Fitted on a third of the train split, it still ranks most dev adverts above the rest (the
    # full model reaches a dev AUC near 0.96): it learnt something, not the base rate.
    auc = roc_auc(labels, [float(v) for v in model.logits(texts)])
    assert auc is not None and auc >= 0.85, auc


def test_blend_weight_follows_the_informative_model():
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 2, 400)
    informative = (labels * 2 - 1) * 3.0 + rng.normal(0, 1, 400)
    noise = rng.normal(0, 3, 400)
    blend, a, _ = choose_blend(noise, informative, list(labels))
    assert blend.weight >= 0.6 and a > 0, blend
    blend, a, _ = choose_blend(informative, noise, list(labels))
    assert blend.weight <= 0.2 and a > 0, blend


def test_head_with_a_blend_needs_the_ngram_logits():
    x = np.ones((2, 3), dtype=np.float32)
    plain = Head([0.5, 0.5, 0.5], 0.0)
    blended = Head([0.5, 0.5, 0.5], 0.0, blend=Blend(0.0, 1.0, 1.0).to_json())
    # Weight 0: the blend is the head alone.
    assert blended.scores(x, np.zeros(2, dtype=np.float32)) == pytest.approx(plain.scores(x))
    heavy = Head([0.5, 0.5, 0.5], 0.0, blend=Blend(1.0, 1.0, 1.0).to_json())
    low, high = heavy.scores(x, np.array([-4.0, 4.0], dtype=np.float32))
    assert low < 0.05 < 0.95 < high
    with pytest.raises(VigieError, match=r"ngrams\.json is missing"):
        blended.scores(x)


def test_cascade_leaves_a_band_for_the_transformer_or_is_not_made():
    rng = np.random.default_rng(3)
    labels = np.array([0] * 200 + [1] * 200)
    overlapping = np.concatenate([rng.normal(-2, 1.5, 200), rng.normal(2, 1.5, 200)])
    cascade = choose_cascade(overlapping, list(labels))
    assert cascade is not None and cascade.low < cascade.high
    scores = cascade.scores(overlapping)
    # On dev it sends no advert away and lets no non-advert through as sure.
    assert not any(cascade.sure(s) and cascade.decision(s) == "not_advert" for s in scores[labels == 1])
    assert not any(cascade.sure(s) and cascade.decision(s) == "advert" for s in scores[labels == 0])
    assert 0 < sum(cascade.sure(s) for s in scores) < len(scores)
    separated = np.concatenate([rng.normal(-5, 0.5, 200), rng.normal(5, 0.5, 200)])
    assert choose_cascade(separated, list(labels)) is None


def test_cascade_bands_ignore_the_posts_the_transformer_gets_wrong_anyway():
    rng = np.random.default_rng(5)
    labels = np.array([0] * 200 + [1] * 200)
    logits = np.concatenate([rng.normal(-2, 1.5, 200), rng.normal(2, 1.5, 200)])
    # The transformer: right on every post but the three lowest adverts (it misses them) and
    # the three highest non-adverts (it flags them); one advert more goes to the review band.
    read = np.where(labels == 1, "advert", "not_advert").astype(object)
    missed = np.argsort(np.where(labels == 1, logits, np.inf))[:3]
    flagged = np.argsort(np.where(labels == 0, -logits, np.inf))[:3]
    reviewed = np.argsort(np.where(labels == 1, logits, np.inf))[3]
    read[missed], read[flagged], read[reviewed] = "not_advert", "advert", "review"
    every = choose_cascade(logits, list(labels))
    shipped = choose_cascade(logits, list(labels), list(read))
    assert every is not None and shipped is not None
    assert every.low < shipped.low and shipped.high < every.high
    scores = shipped.scores(logits)
    sure = np.array([shipped.sure(s) for s in scores])
    decided = np.array([shipped.decision(s) for s in scores])
    assert sure.sum() > np.array([every.sure(s) for s in every.scores(logits)]).sum()
    # On dev the cascade sends away no advert the transformer finds (the reviewed one too) and
    # flags no non-advert it would leave alone: every sure decision is the transformer's or better.
    assert not (sure & (labels == 1) & (read != "not_advert") & (decided == "not_advert")).any()
    assert not (sure & (labels == 0) & (read != "advert") & (decided == "advert")).any()
    assert sure[missed].all() and (decided[missed] == "not_advert").all()
