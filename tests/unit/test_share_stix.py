"""The STIX 2.1 bundle: valid for stix2-validator, marked, with stable ids."""

from __future__ import annotations

import base64
import json
from collections import Counter

import pytest
from stix2validator import ValidationOptions, validate_string

from pipeline.share.markings import TLP2_IDS, Markings
from pipeline.share.stix import EVIDENCE_EXTENSION, build_bundle, bundle_json
from tests.unit.test_share_misp import SHA_IMAGE, SHA_PAGE, sample_selection

# Deliberate: SDO ids are UUIDv5 (stable across exports, not v4: 103); Telegram is not in
# account-type-ov (244).
EXPECTED_WARNINGS = {"103", "244"}


def bundle_of(selection=None, markings=None) -> dict:
    bundle = build_bundle(selection or sample_selection(), markings or Markings("amber", "amber"), "Unit 7")
    return json.loads(bundle_json(bundle))


def validate(raw: dict) -> Counter[str]:
    result = validate_string(json.dumps(raw), ValidationOptions(version="2.1"))
    assert result.is_valid, [str(e) for e in result.errors]
    assert not result.errors
    codes = Counter(str(w).split("{", 1)[1].split("}", 1)[0] for w in result.warnings)
    print(f"stix2-validator warnings: {sum(codes.values())} {dict(codes)}")
    return codes


def of_type(raw: dict, kind: str) -> list[dict]:
    return [o for o in raw["objects"] if o["type"] == kind]


def test_bundle_validates_with_only_the_deliberate_warnings():
    raw = bundle_of()
    codes = validate(raw)
    assert set(codes) <= EXPECTED_WARNINGS


def test_every_object_is_marked_and_attributed():
    raw = bundle_of()
    (identity,) = [o for o in of_type(raw, "identity") if o["name"] == "Unit 7"]
    tlp = next(o for o in of_type(raw, "marking-definition") if o["id"] == TLP2_IDS["amber"])
    assert tlp["name"] == "TLP:AMBER"
    pap = next(o for o in of_type(raw, "marking-definition") if o["name"] == "PAP:AMBER")
    assert pap["definition_type"] == "statement" and pap["definition"]["statement"].startswith("PAP:AMBER")
    for obj in raw["objects"]:
        if obj["type"] in ("marking-definition", "extension-definition") or obj is identity:
            continue
        assert obj["object_marking_refs"] == [tlp["id"], pap["id"]], obj["id"]
        if "created" in obj:
            assert obj["created_by_ref"] == identity["id"], obj["id"]


@pytest.mark.parametrize("tlp", ["clear", "green", "amber+strict", "red"])
def test_the_configured_tlp_is_the_published_tlp2_marking(tlp):
    raw = bundle_of(markings=Markings(tlp, "green"))
    validate(raw)
    marks = {o["id"]: o for o in of_type(raw, "marking-definition")}
    assert TLP2_IDS[tlp] in marks and TLP2_IDS["amber"] not in marks
    assert marks[TLP2_IDS[tlp]]["name"] == f"TLP:{tlp.upper()}"
    observed = of_type(raw, "observed-data")[0]
    assert TLP2_IDS[tlp] in observed["object_marking_refs"]


def test_posts_accounts_contacts_and_evidence():
    raw = bundle_of()
    objects = {o["id"]: o for o in raw["objects"]}
    logins = sorted((o["account_type"], o["account_login"]) for o in of_type(raw, "user-account"))
    assert logins == [
        ("telegram", "dunkirk_taxi_game"),
        ("telegram", "kurd_game_dunkirk"),
        ("telegram", "uk_boat_express"),
    ]
    assert [o["value"] for o in of_type(raw, "x-vigie-phone-number")] == ["+33758214693"]
    assert of_type(raw, "x-vigie-phone-number")[0]["country"] == "FR"
    (wallet,) = of_type(raw, "x-vigie-crypto-wallet")
    assert (wallet["value"], wallet["currency"]) == ("TNv8kQ3xWm5RzL2pYc7HdJ4fG9sBtE6uAq", "usdt-trc20")
    observed = {o["extensions"][EVIDENCE_EXTENSION]["post_key"]: o for o in of_type(raw, "observed-data")}
    first = observed["telegram:uk_boat_express:503"]
    kinds = Counter(objects[ref]["type"] for ref in first["object_refs"])
    assert kinds == {
        "user-account": 2,
        "url": 2,
        "x-vigie-phone-number": 1,
        "x-vigie-crypto-wallet": 1,
        "file": 1,
        "artifact": 1,
    }
    evidence = first["extensions"][EVIDENCE_EXTENSION]
    assert evidence["page_sha256"] == SHA_PAGE and evidence["content_sha256"] == "d" * 64
    assert "page_sha256" not in observed["telegram:kurd_game_dunkirk:15"]["extensions"][EVIDENCE_EXTENSION]
    assert first["first_observed"] == "2026-08-06T18:30:00Z"
    text = next(objects[r] for r in first["object_refs"] if objects[r]["type"] == "artifact")
    assert (
        base64.b64decode(text["payload_bin"]).decode()
        == "UK game from Dunkirk £1,300, WhatsApp +33 7 58 21 46 93"
    )
    image = next(objects[r] for r in first["object_refs"] if objects[r]["type"] == "file")
    assert image["hashes"] == {"SHA-256": SHA_IMAGE}
    office = next(o for o in of_type(raw, "identity") if o["name"] == "sarafi azadi")
    assert {(r["source_ref"], r["target_ref"]) for r in of_type(raw, "relationship")} == {
        (o["id"], office["id"]) for o in observed.values()
    }


def test_network_grouping_and_notes():
    raw = bundle_of()
    (grouping,) = of_type(raw, "grouping")
    assert grouping["context"] == "suspicious-activity" and "net-0123456789ab" in grouping["name"]
    observed = {o["id"] for o in of_type(raw, "observed-data")}
    accounts = {o["id"] for o in of_type(raw, "user-account") if o["account_login"] != "dunkirk_taxi_game"}
    assert set(grouping["object_refs"]) == observed | accounts
    notes = {n["abstract"]: n for n in of_type(raw, "note")}
    profile = notes["Profile of smuggling network net-0123456789ab"]
    assert profile["object_refs"] == [grouping["id"]] and "France → UK" in profile["content"]
    assert notes["Analyst's assessment: confirmed"]["content"] == "crossing advert with price and WhatsApp"
    assert notes["Text read in the advert's image"]["content"] == "UK £1300 +33758214693"


def test_no_text_when_the_configuration_keeps_texts():
    selection = sample_selection()
    for post in selection.posts:
        post.text = None
        post.images = (
            [type(post.images[0])(sha256=SHA_IMAGE, content_type="image/jpeg", ocr_text=None, url=None)]
            if post.images
            else []
        )
    raw = bundle_of(selection)
    validate(raw)
    assert not of_type(raw, "artifact")
    dumped = json.dumps(raw, ensure_ascii=False)
    assert "UK game from Dunkirk" not in dumped and "UK £1300" not in dumped


def test_a_second_export_gives_the_same_ids():
    first, second = bundle_of(), bundle_of()
    assert [o["id"] for o in first["objects"]] == [o["id"] for o in second["objects"]]
    assert first == second
    assert len({o["id"] for o in first["objects"]}) == len(first["objects"])
