"""Training variants: contacts dropped, emoji stripped, labels and splits kept."""

from __future__ import annotations

from classifier.augment import augment, drop_contacts, strip_emoji
from classifier.corpus import Example
from classifier.cues import find_cues

ADVERT = "🚤 Izmir → Italy by yacht\n✅ 100% guaranteed, 4500€\n📞 WhatsApp: +90 532 111 22 33\nt.me/yacht_it @yacht_italy"


def test_dropping_contacts_leaves_the_offer_and_no_way_to_reach_the_seller():
    dropped = drop_contacts(ADVERT)
    assert {c.cue for c in find_cues(dropped)} & {"phone", "messenger_link", "handle"} == set()
    assert "Izmir → Italy by yacht" in dropped and "4500€" in dropped
    assert "\n\n" not in dropped and "  " not in dropped


def test_stripping_emoji_keeps_every_word():
    stripped = strip_emoji("🇬🇧🇬🇧 we arrived 🙏❤️ thank you mum 👨‍👩‍👧")
    assert stripped == "we arrived thank you mum"
    assert strip_emoji(ADVERT).splitlines()[0] == "Izmir Italy by yacht"


def _items() -> list[Example]:
    return (
        [
            Example(ADVERT.replace("4500", str(4500 + i)), "en", 1, "advert_crossing", "train")
            for i in range(200)
        ]
        + [
            Example(
                f"🇬🇧 we arrived safely, day {i}, thanks to everyone who prayed", "en", 0, "personal", "train"
            )
            for i in range(100)
        ]
        + [
            Example(f"🌧 weather in Calais, day {i}: rain all week", "en", 0, "news", "train")
            for i in range(100)
        ]
    )


def test_variants_keep_label_kind_and_split_and_are_seeded():
    items = _items()
    variants = augment(items, 0.25, seed=13)
    assert variants == augment(items, 0.25, seed=13)
    assert variants != augment(items, 0.25, seed=14)
    by_text = {ex.text: ex for ex in items}
    assert not any(v.text in by_text for v in variants)
    assert {(v.label, v.kind, v.split) for v in variants} == {
        (1, "advert_crossing", "train"),
        (0, "personal", "train"),
    }
    adverts = [v for v in variants if v.label == 1]
    # About a quarter of 200 adverts for each of the two kinds of variant.
    assert 60 <= len(adverts) <= 140, len(adverts)
    assert augment(items, 0.0, seed=13) == []


def test_variants_too_short_to_mean_anything_are_left_out():
    only_contact = [Example("📞 +90 532 111 22 33 🚤", "en", 1, "advert_crossing", "train")]
    assert augment(only_contact, 1.0, seed=1) == []
