"""The MISP event: objects from PyMISP's templates, references, markings, stable ids."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pymisp
import pytest
from pymisp import MISPEvent, MISPObject

from pipeline.intel.networks import Link, Network
from pipeline.share.markings import Markings
from pipeline.share.misp import build_event, event_json
from pipeline.share.selection import Selection, SharedImage, SharedPost

PYMISP_DATA = Path(pymisp.__file__).parent / "data"
SHA_PAGE = "a" * 64
SHA_IMAGE = "b" * 64


def shared_post(key: str, channel: str, **changes: object) -> SharedPost:
    post = SharedPost(
        key=key,
        platform="telegram",
        channel=channel,
        post_id=key.rsplit(":", 1)[1],
        url=f"https://t.me/{channel}/{key.rsplit(':', 1)[1]}",
        text="UK game from Dunkirk £1,300, WhatsApp +33 7 58 21 46 93",
        text_sha256="c" * 64,
        page_sha256=SHA_PAGE,
        content_sha256="d" * 64,
        published_at="2026-08-06T18:30:00+00:00",
        captured_at="2026-11-30T10:00:00+00:00",
        first_seen="2026-11-30T10:00:00+00:00",
        updated_at="2026-11-30T10:00:00+00:00",
        author_name=None,
        lang="en",
        score=0.97,
        cluster_id="c-1",
        phones=["+33758214693"],
        handles=["dunkirk_taxi_game"],
        links=["wa.me/33758214693"],
        payments=["sarafi azadi"],
        wallets=["usdt-trc20:TNv8kQ3xWm5RzL2pYc7HdJ4fG9sBtE6uAq"],
        images=[
            SharedImage(
                sha256=SHA_IMAGE, content_type="image/jpeg", ocr_text="UK £1300 +33758214693", url=None
            )
        ],
        referral_status="confirmed",
        notice_id=None,
        review_decision="confirmed",
        review_reason="crossing advert with price and WhatsApp",
        review_decided_at="2026-11-30T11:00:00+00:00",
    )
    for name, value in changes.items():
        setattr(post, name, value)
    return post


def network(post_keys: list[str]) -> Network:
    return Network(
        network_id="net-0123456789ab",
        first_seen="2026-07-04T18:20:00+00:00",
        last_seen="2026-11-29T20:15:00+00:00",
        sources=["telegram:kurd_game_dunkirk", "telegram:uk_boat_express"],
        members={"phone": ["+33758214693"], "handle": ["dunkirk_taxi_game"], "payment": ["sarafi azadi"]},
        links=[Link("telegram:kurd_game_dunkirk", "telegram:uk_boat_express", ["phone:+33758214693"], 1.0)],
        post_keys=post_keys,
        flagged_posts=len(post_keys),
        languages={"en": 1, "kmr": 1},
        routes=[
            {
                "origin": "fr",
                "destination": "gb",
                "origin_name": "France",
                "destination_name": "UK",
                "posts": 2,
            }
        ],
        prices=[{"month": "2026-08", "route": "fr → gb", "currency": "GBP", "median": 1300, "posts": 2}],
        transport={"boat": 2},
        guarantees={},
        payment_terms={"pay after arrival": 1},
        referral_outcomes={},
    )


def sample_selection() -> Selection:
    a = shared_post("telegram:uk_boat_express:503", "uk_boat_express", networks=["net-0123456789ab"])
    b = shared_post(
        "telegram:kurd_game_dunkirk:15",
        "kurd_game_dunkirk",
        images=[],
        review_reason=None,
        page_sha256="",
        networks=["net-0123456789ab"],
    )
    return Selection(
        period="2026", network_id=None, posts=[a, b], networks=[network([a.key, b.key])], include_text=True
    )


def written(tmp_path: Path, selection: Selection, markings: Markings | None = None) -> tuple[dict, MISPEvent]:
    event = build_event(selection, markings or Markings("amber", "amber"), "Unit 7")
    path = tmp_path / "event.json"
    path.write_text(event_json(event), encoding="utf-8")
    loaded = MISPEvent()
    loaded.load_file(path)
    return json.loads(path.read_text(encoding="utf-8")), loaded


def by_name(event: MISPEvent, name: str) -> list[MISPObject]:
    return [o for o in event.objects if o.name == name]


def values(obj: MISPObject, relation: str) -> list[str]:
    return [a.value for a in obj.attributes if a.object_relation == relation]


def test_event_carries_the_markings_and_validates_against_misp_schema(tmp_path):
    raw, event = written(tmp_path, sample_selection())
    schema = json.loads((PYMISP_DATA / "schema-lax.json").read_text(encoding="utf-8"))
    jsonschema.validate(raw, schema)
    assert {t.name for t in event.tags} >= {"tlp:amber", "PAP:AMBER", 'vigie:network="net-0123456789ab"'}
    assert event.distribution == 0 and event.threat_level_id == 2 and event.analysis == 1
    assert "2026" in event.info and "Unit 7" in event.info
    assert event.Orgc.name == "Unit 7"
    assert str(event.date) == "2026-08-06"


@pytest.mark.parametrize(
    ("tlp", "pap", "tags", "distribution"),
    [
        ("amber+strict", "red", ["tlp:amber+strict", "PAP:RED"], 0),
        ("clear", "clear", ["tlp:clear", "PAP:CLEAR"], 3),
        ("green", "green", ["tlp:green", "PAP:GREEN"], 1),
    ],
)
def test_markings_follow_the_configuration(tmp_path, tlp, pap, tags, distribution):
    _, event = written(tmp_path, sample_selection(), Markings(tlp, pap))
    names = [t.name for t in event.tags]
    assert names[:2] == tags and "tlp:amber" not in names
    assert event.distribution == distribution


def test_objects_and_their_references(tmp_path):
    _, event = written(tmp_path, sample_selection())
    blogs = by_name(event, "microblog")
    assert len(blogs) == 2
    blog = next(b for b in blogs if values(b, "url") == ["https://t.me/uk_boat_express/503"])
    assert values(blog, "post") == ["UK game from Dunkirk £1,300, WhatsApp +33 7 58 21 46 93"]
    assert values(blog, "username") == ["uk_boat_express"]
    assert values(blog, "embedded-link") == ["https://wa.me/33758214693"]
    assert values(blog, "type") == ["Telegram"]

    uuids = {o.uuid: o for o in event.objects}
    refs = {(r.relationship_type, uuids[r.referenced_uuid].name) for r in blog.references}
    assert refs == {
        ("authored-by", "telegram-account"),
        ("part-of", "instant-message-group"),
        ("mentions", "phone-number"),
        ("mentions", "telegram-account"),
        ("mentions", "organization"),
        ("mentions", "coin-address"),
        ("derived-from", "artifact"),
    }
    # One phone object however many posts give the number, in E.164 with its country.
    (phone,) = by_name(event, "phone-number")
    assert values(phone, "phone-number") == ["+33758214693"]
    assert values(phone, "country-code") == ["FR"] and values(phone, "country-code-numeric") == ["+33"]
    accounts = sorted(v for o in by_name(event, "telegram-account") for v in values(o, "username"))
    assert accounts == ["dunkirk_taxi_game", "kurd_game_dunkirk", "uk_boat_express"]
    (coin,) = by_name(event, "coin-address")
    assert values(coin, "address-crypto") == ["TNv8kQ3xWm5RzL2pYc7HdJ4fG9sBtE6uAq"] and values(
        coin, "symbol"
    ) == ["USDT"]
    (capture,) = by_name(event, "artifact")  # the post without a page hash has none
    assert values(capture, "sha256") == [SHA_PAGE]

    (image,) = by_name(event, "ocrized-image")
    assert values(image, "ocr-text") == ["UK £1300 +33758214693"]
    assert values(image, "image") == [f"{SHA_IMAGE}.jpg"]
    assert [(r.relationship_type, r.referenced_uuid) for r in image.references] == [
        ("included-in", blog.uuid)
    ]
    (note,) = by_name(event, "annotation")
    assert values(note, "text") == ["crossing advert with price and WhatsApp"]
    assert note.references[0].referenced_uuid == blog.uuid

    network_org = next(
        o for o in by_name(event, "organization") if values(o, "alias") == ["net-0123456789ab"]
    )
    members = {
        uuids[o.uuid].name
        for o in event.objects
        for r in o.references
        if r.relationship_type == "member-of" and r.referenced_uuid == network_org.uuid
    }
    assert members == {"telegram-account", "phone-number"}
    assert "France → UK" in values(network_org, "description")[0]


def test_every_object_and_relation_is_in_its_template(tmp_path):
    _, event = written(tmp_path, sample_selection())
    relationships = json.loads(
        (PYMISP_DATA / "misp-objects" / "relationships" / "definition.json").read_text(encoding="utf-8")
    )
    known = {v["name"] for v in relationships["values"]}
    for obj in event.objects:
        template = json.loads(
            (PYMISP_DATA / "misp-objects" / "objects" / obj.name / "definition.json").read_text(
                encoding="utf-8"
            )
        )
        assert obj.template_uuid == template["uuid"] and int(obj.template_version) == template["version"]
        strict = MISPObject(obj.name, strict=True, standalone=False)
        for attribute in obj.attributes:
            assert attribute.object_relation in template["attributes"], (obj.name, attribute.object_relation)
            assert attribute.type == template["attributes"][attribute.object_relation]["misp-attribute"]
            strict.add_attribute(attribute.object_relation, value=attribute.value)
        strict._validate()  # required attributes present, no repeated single-valued one
        assert {r.relationship_type for r in obj.references} <= known


def test_no_text_when_the_configuration_keeps_texts(tmp_path):
    selection = sample_selection()
    for post in selection.posts:
        post.text = None
        post.images = [SharedImage(sha256=SHA_IMAGE, content_type="image/jpeg", ocr_text=None, url=None)]
    raw, event = written(tmp_path, selection)
    assert all(not values(b, "post") for b in by_name(event, "microblog"))
    assert not by_name(event, "ocrized-image")
    assert "UK game from Dunkirk" not in json.dumps(raw, ensure_ascii=False)


def test_a_second_export_gives_the_same_ids(tmp_path):
    first = build_event(sample_selection(), Markings("amber", "amber"), "Unit 7")
    second = build_event(sample_selection(), Markings("amber", "amber"), "Unit 7")
    ids = lambda e: sorted(  # noqa: E731
        [e.uuid]
        + [o.uuid for o in e.objects]
        + [a.uuid for o in e.objects for a in o.attributes]
        + [r.uuid for o in e.objects for r in o.references]
    )
    assert ids(first) == ids(second)
    assert len(set(ids(first))) == len(ids(first))
    other = build_event(sample_selection(), Markings("amber", "amber"), "Unit 8")
    assert other.uuid != first.uuid
