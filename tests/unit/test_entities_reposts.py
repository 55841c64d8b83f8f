"""Entity extraction and repost grouping (pure parts, no model)."""

from __future__ import annotations

import pytest

from classifier.normalize import normalize
from crawlers.telegram.mirror import load_channels
from pipeline.enrich.entities import extract, phones_in, prices_in, route
from pipeline.enrich.reposts import RepostIndex, channels_sharing_contacts, new_cluster_id
from vigie.records import Post
from vigie.store import Store, analysis


@pytest.mark.parametrize(
    ("text", "lang", "phones"),
    [
        ("WhatsApp +90 536 741 22 90", "tr", ["+905367412290"]),
        ("واتساب ٠٠٩٦٤٧٥٠١٢٣٤٥٦٧", "ar", ["+9647501234567"]),
        ("w h a t s a p p 0 0 4 4 7 7 0 0 9 0 0 4 1 2", "en", ["+447700900412"]),
        ("شماره ۰۹۱۲ ۳۴۵ ۶۷۸۹ تماس", "fa", ["+989123456789"]),
        ("wa.me/218914473620 now", "ar", ["+218914473620"]),
        ("price 6500 euro, 3 people", "en", []),
    ],
)
def test_phones(text, lang, phones):
    assert phones_in(normalize(text), lang) == phones


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("price 6 500€ per person", [(6500.0, "EUR")]),
        ("£1.5k only", [(1500.0, "GBP")]),
        ("3 bin euro", [(3000.0, "EUR")]),
        ("$7,000 to Poland", [(7000.0, "USD")]),
        ("۲۰۰ میلیون تومان", []),  # millions of toman are not parsed as a plain amount
        ("12000 dinar", [(12000.0, "IQD")]),
        ("2500 دولار", [(2500.0, "USD")]),
        ("40,000 afghani", [(40000.0, "AFN")]),
        ("the 2 boats", []),
    ],
)
def test_prices(text, expected):
    assert [(p.amount, p.currency) for p in prices_in(text.lower())] == expected


@pytest.mark.parametrize(
    ("text", "origin", "destination"),
    [
        ("game to uk from dunkirk", "fr-dunkirk", "gb"),
        ("yacht izmir → italy", "tr-izmir", "it"),
        ("من ليبيا الى ايطاليا", "ly", "it"),
        ("van - istanbul - yunanistan", "tr-van", "gr"),
        ("no places here", None, None),
    ],
)
def test_route(text, origin, destination):
    assert route(text) == (origin, destination)


def test_extract_everything_from_an_advert():
    e = extract(
        "🚤 Yacht Izmir → Italy, 100% guaranteed, 6 500€, pay after arrival. "
        "WhatsApp +90 536 741 22 90 wa.me/905367412290 @Omid_Safar",
        "en",
    )
    assert e.phones == ["+905367412290"]
    assert e.handles == ["omid_safar"] and e.links == ["wa.me/905367412290"]
    assert [(p.amount, p.currency) for p in e.prices] == [(6500.0, "EUR")]
    assert (e.origin, e.destination) == ("tr-izmir", "it")
    assert (
        e.transport == ["boat"] and "guaranteed" in e.guarantees and e.payment_terms == ["pay after arrival"]
    )
    assert e.contacts == ["+905367412290", "@omid_safar", "wa.me/905367412290"]


def _store_with(tmp_path, posts):
    store = Store(tmp_path / "vigie.db")
    store.upsert_posts(posts)
    return store


def test_sample_reposts_cluster_together_and_ids_are_stable(tmp_path):
    channels = load_channels()
    by_key = {f"{name}/{p['id']}": p["text"] for name, ch in channels.items() for p in ch["posts"]}
    pairs = [
        ("rebaz_safar_uk/142", "safar_omid_van/64"),
        ("rebaz_safar_uk/144", "dichvu_sang_anh_uk/39"),
        ("bahr_zuwara_express/90", "rebaz_safar_uk/165"),
        ("dichvu_sang_anh_uk/34", "safar_omid_van/72"),
        ("rebaz_safar_uk/150", "bahr_zuwara_express/120"),
        ("safar_omid_van/79", "dichvu_sang_anh_uk/57"),
    ]
    posts = [
        Post("telegram", k.split("/")[0], int(k.split("/")[1]), f"https://t.me/{k}", by_key[k], None)
        for pair in pairs
        for k in pair
    ]
    store = _store_with(tmp_path, posts)
    index = RepostIndex(store)
    clusters = {}
    for post in posts:
        clusters[f"{post.channel}/{post.post_id}"] = index.assign(post.key, post.text)
    for a, b in pairs:
        assert clusters[a] == clusters[b], (a, b)
    assert len(set(clusters.values())) == len(pairs)
    first = clusters[pairs[0][0]]
    assert first == new_cluster_id(f"telegram:{pairs[0][0].replace('/', ':')}")
    # A fresh index over the same store gives a third copy the same, stable id.
    again = RepostIndex(store)
    copy = by_key[pairs[0][0]] + "\n🔥"
    store.upsert_posts([Post("telegram", "newchan", 5, "https://t.me/newchan/5", copy, None)])
    assert again.assign("telegram:newchan:5", copy) == first
    store.close()


def test_bridging_post_merges_clusters_and_the_older_id_wins(tmp_path):
    part_a = "Boat from Zuwara to Lampedusa every Friday, 3000 dollars, safe and guaranteed. "
    shared = "Call or message our office day and night, we answer every question about the trip. "
    part_c = "Truck from Calais to Dover every night, 2000 pounds, no checks at the border. "
    a, b = part_a + shared, shared + part_c
    bridge = part_a[: len(part_a) // 2] + shared + part_c[: len(part_c) // 2]
    posts = [
        Post("telegram", "c", i, f"https://t.me/c/{i}", t, None) for i, t in enumerate([a, b, bridge], 1)
    ]
    store = _store_with(tmp_path, posts)
    index = RepostIndex(store)
    ca, cb = index.assign(posts[0].key, a), index.assign(posts[1].key, b)
    assert ca != cb
    merged = index.assign(posts[2].key, bridge)
    assert merged == ca
    assert {cluster for _, cluster, _ in analysis.all_signatures(store)} == {ca}
    store.close()


def test_an_index_catches_up_with_what_another_process_saved(tmp_path):
    advert = "Boat from Zuwara to Lampedusa every Friday, 3000 dollars, safe and guaranteed, call us."
    gone = "Truck from Calais to Dover every night, 2000 pounds, no checks at the border, call us."
    posts = [
        Post("telegram", ch, i, f"https://t.me/{ch}/{i}", t, None)
        for i, (ch, t) in enumerate([("a", advert), ("b", advert + " 🔥"), ("c", gone)], 1)
    ]
    store = _store_with(tmp_path, posts)
    mine, theirs = RepostIndex(store), RepostIndex(store)
    mine.assign(posts[2].key, gone)
    first = theirs.assign(posts[0].key, advert)
    analysis.forget_signature(store, posts[2].key)  # the other process no longer flags it
    mine.catch_up(store)
    assert posts[2].key not in mine.signatures and posts[2].key not in mine.cluster_of
    assert mine.assign(posts[1].key, advert + " 🔥") == first
    store.close()


def test_channels_sharing_contacts(tmp_path):
    posts = [
        Post("telegram", ch, i, f"https://t.me/{ch}/{i}", "x", None)
        for i, ch in enumerate(["alpha_chan", "beta_chan", "gamma_chan"], 1)
    ]
    store = _store_with(tmp_path, posts)
    analysis.replace_contacts(store, posts[0].key, "telegram", "alpha_chan", ["+447700900412", "@boss"])
    analysis.replace_contacts(store, posts[1].key, "telegram", "beta_chan", ["+447700900412", "@boss"])
    analysis.replace_contacts(store, posts[2].key, "telegram", "gamma_chan", ["@other"])
    links = channels_sharing_contacts(store)
    assert links == [
        {
            "channels": ["telegram:alpha_chan", "telegram:beta_chan"],
            "contacts": ["+447700900412", "@boss"],
            "shared": 2,
        }
    ]
    store.close()


def test_a_taxi_boat_is_a_boat_and_a_taxi_is_a_car():
    from pipeline.enrich.entities import extract

    assert extract("Taxi game ji Gravelines 🚕🚤 Brîtanya 2500 £", "kmr").transport == ["boat"]
    assert "car" not in extract("🚕 TAXI GAME to UK, the boat picks you up from the water", "en").transport
    assert extract("Minsk → Poland, a taxi waits after the forest, $5000", "en").transport[0] == "car"
