"""A post's prediction from its caption and the text read in its images (`with_images`)."""

from __future__ import annotations

from classifier.langid import identify
from classifier.model import Prediction
from pipeline.enrich.process import with_images

FLYER = Prediction("tr", 0.97, 0.93, True, [{"cue": "price", "text": "2500€", "weight": 1.2}], "advert")


def caption(text: str) -> Prediction:
    """What `predict` gives a caption too short to score: its language ID alone."""
    lang = identify(text)
    return Prediction(lang.lang, lang.confidence, 0.0, False, [], "not_advert", "too_short")


def test_a_caption_that_says_nothing_takes_the_language_of_its_images():
    post = with_images(caption("DM 📩"), FLYER)
    assert (post.lang, post.lang_confidence, post.score, post.decision, post.stage) == (
        "tr",
        0.97,
        0.93,
        "advert",
        "image",
    )
    assert post.cues == [{"cue": "price", "text": "2500€", "weight": 1.2, "source": "image"}]


def test_the_language_comes_from_the_image_even_when_the_caption_decides():
    quiet = Prediction("tr", 0.9, 0.0, False, [], "not_advert")  # a family photo's OCR
    post = with_images(caption("info 👇"), quiet)
    assert (post.lang, post.score, post.stage) == ("tr", 0.0, "too_short")


def test_a_caption_with_a_language_keeps_it():
    text = Prediction("en", 0.99, 0.2, False, [], "not_advert")
    post = with_images(text, FLYER)
    assert (post.lang, post.lang_confidence, post.score, post.stage) == ("en", 0.99, 0.93, "image")
    assert with_images(text, Prediction("ar", 0.8, 0.1, False, [])).lang == "en"
