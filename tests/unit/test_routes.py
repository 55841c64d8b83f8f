"""Routes read from adverts: a labelled set across the languages Vigie reads, price lists
read leg by leg, arrows and flags."""

from __future__ import annotations

import pytest

from classifier.cues import route_label
from pipeline.enrich.entities import extract
from pipeline.enrich.routes import country_of, legs, mentions, route

# (language, advert, origin, destination), phrased as adverts write them.
LABELLED = [
    ("en", "Game to UK from Dunkirk, £1,500 per person", "fr-dunkirk", "gb"),
    ("en", "Yacht from Izmir to Italy, 6 days a week", "tr-izmir", "it"),
    ("en", "Lorry from Belgium to Ireland 🇮🇪 €4,000", "be", "ie"),
    ("en", "UK ⬅️ France, new boat every night", "fr", "gb"),
    ("en", "🇫🇷➡️🇬🇧 game tonight, DM @calais_game_uk", "fr", "gb"),
    ("en", "Boat Libya -> Italy 🇮🇹 3000$", "ly", "it"),
    ("en", "Another group arrived in UK today 🇬🇧, landed near Dover", None, "gb"),
    ("en", "Taxi to Germany through Serbia, 2500 euro", None, "de"),
    ("en", "Calais → London by lorry, driver is English", "fr-calais", "gb-london"),
    ("en", "We take you out of Turkey to Greece, 100% guaranteed", "tr", "gr"),
    ("fr", "Passage de Calais vers l'Angleterre, 1500 euros", "fr-calais", "gb"),
    ("fr", "Bateau depuis la Libye pour l'Italie", "ly", "it"),
    ("fr", "Voyage du Maroc en Espagne, paiement à l'arrivée", "ma", "es"),
    ("tr", "İzmir'den İtalya'ya yat ile geçiş, 5000 euro", "tr-izmir", "it"),
    ("tr", "Bodrum'dan Yunanistan'a bot, garanti", "tr-bodrum", "gr"),
    ("tr", "Edirne'den Almanya'ya tır ile", "tr-edirne", "de"),
    ("tr", "İstanbul → Almanya araba ile 3000 euro", "tr-istanbul", "de"),
    ("sq", "Nga Franca në Angli me gomone, 3000 paund", "fr", "gb"),
    ("sq", "Transport nga Shqipëria për Italia me skaf", "al", "it"),
    ("sq", "Nga Vlora në Itali çdo natë", "al-vlore", "it"),
    ("kmr", "Ji Fransayê bo Brîtanyayê bi qeyikê 🚤", "fr", "gb"),
    ("kmr", "Qeyik ji Gravelines ber bi Brîtanyayê", "fr-gravelines", "gb"),
    ("kmr", "Bi lorî ji Belçîkayê bo Îrlandayê 🇮🇪", "be", "ie"),
    ("kmr", "Geym ji Calais û Dunkirkê 🇫🇷➡️🇬🇧", "fr-calais", "gb"),
    ("kmr", "Ji Tirkiyê ber bi Yewnanistanê ve bi rêya çemê Meriçê", "tr", "gr"),
    ("ckb", "یەخت لە ئیزمیرەوە بۆ ئیتاڵیا", "tr-izmir", "it"),
    ("ckb", "🚛 لۆری لە کالێوە بۆ بەریتانیا 🇬🇧", "fr-calais", "gb"),
    ("ckb", "بودروم ← دوورگەکانی یۆنان 🇬🇷", "tr-bodrum", "gr"),
    ("ckb", "گەیشتنی گروپی ٢١ بۆ کالابریا، هەمووان سەلامەتن", None, "it-calabria"),
    ("ar", "من ليبيا الى ايطاليا بالمركب", "ly", "it"),
    ("ar", "يخت VIP من ازمير الى ايطاليا 🇮🇹", "tr-izmir", "it"),
    ("ar", "من اليونان لإيطاليا بالشاحنة عن طريق ميناء باتراس", "gr", "it"),
    ("ar", "جيم بريطانيا من كاليه ودنكيرك", "fr-calais", "gb"),
    ("ar", "رحلة من زوارة الى لامبيدوزا", "ly-zuwara", "it-lampedusa"),
    ("ar", "🛥️ يخت ازمير ← ايطاليا: 6000€", "tr-izmir", "it"),
    ("ar", "تهريب من تركيا إلى اليونان عبر البحر", "tr", "gr"),
    ("ar-Latn", "Tahreeb men Turkia la Almanya, el si3er 4000 euro", "tr", "de"),
    ("ar-Latn", "Rehla min Libya ila Italia", "ly", "it"),
    ("fa", "قاچاق از ایران به ترکیه با ماشین", "ir", "tr"),
    ("fa", "از ترکیه به یونان با قایق، تضمینی", "tr", "gr"),
    ("fa", "انتقال از افغانستان تا ایران", "af", "ir"),
    ("fa-Latn", "az Turkie be Yunan ba ghayegh", "tr", "gr"),
    ("ps", "له افغانستان نه ایران ته", "af", "ir"),
    ("ps", "له ترکیې نه یونان ته په کښتۍ", "tr", "gr"),
    ("ur", "ترکی سے یونان تک کشتی کے ذریعے", "tr", "gr"),
    ("ur", "لیبیا سے اٹلی تک، قیمت 5000 ڈالر", "ly", "it"),
    ("vi", "Dịch vụ từ nước Pháp sang Anh quốc, bao đậu", "fr", "gb"),
    ("vi", "Đi từ Việt Nam đến Nước Anh trong 3 tháng", "vn", "gb"),
    ("vi", "Xe từ nước Pháp đến Vương quốc Anh mỗi tuần", "fr", "gb"),
    ("so", "Socdaal ka Liibiya ilaa Talyaaniga", "ly", "it"),
    ("so", "Safar ka Turkiga u Giriiga", "tr", "gr"),
    ("so", "Tahriib ka Suudaan ilaa Liibiya gaari", "sd", "ly"),
    ("ti", "ካብ ሊብያ ናብ ጣልያን ብጀልባ", "ly", "it"),
    ("ti", "ካብ ሱዳን ናብ ሊብያ ብመኪና", "sd", "ly"),
    ("am", "ከሊቢያ ወደ ጣሊያን በጀልባ", "ly", "it"),
    ("am", "ከኢትዮጵያ ወደ ሱዳን በመኪና", "et", "sd"),
    ("de", "Von Serbien nach Österreich mit dem Auto", None, None),
    ("en", "🇧🇾➡️🇵🇱➡️🇩🇪 Belarus route, visa + flight", "by", "de"),
    ("en", "Game UK from Dunkirk every night", "fr-dunkirk", "gb"),
    ("en", "No places here, just a question", None, None),
]


def _score(read) -> float:
    right = sum(read(text) == (origin, destination) for _, text, origin, destination in LABELLED)
    return right / len(LABELLED)


def test_the_labelled_set_covers_every_language():
    langs = {lang for lang, *_ in LABELLED}
    assert {
        "en",
        "fr",
        "tr",
        "sq",
        "kmr",
        "ckb",
        "ar",
        "ar-Latn",
        "fa",
        "fa-Latn",
        "ps",
        "ur",
        "vi",
        "so",
        "ti",
        "am",
    } <= langs
    assert len(LABELLED) >= 60


@pytest.mark.parametrize(("lang", "text", "origin", "destination"), LABELLED)
def test_route_of_each_labelled_advert(lang, text, origin, destination):
    assert route(text) == (origin, destination), lang


def test_accuracy_on_the_labelled_set():
    assert _score(route) >= 0.95


def test_a_price_list_gives_one_leg_per_line_with_its_own_price():
    found = legs("🛥️ Izmir → Italy: 6000€ | 🚤 Bodrum → Greece: 2500€")
    assert [(leg.origin, leg.destination) for leg in found] == [("tr-izmir", "it"), ("tr-bodrum", "gr")]
    assert [[(p["amount"], p["currency"]) for p in leg.prices] for leg in found] == [
        [(6000.0, "EUR")],
        [(2500.0, "EUR")],
    ]


def test_a_price_list_over_lines_in_arabic():
    found = legs(
        "💥 أسعار الشتاء 💥\n🛥️ يخت ازمير ← ايطاليا: 6000€\n🚤 بودروم ← اليونان: 2500€\n🇬🇧 جيم دنكيرك ← بريطانيا: 2000£"
    )
    assert [(leg.origin, leg.destination, leg.prices[0]["amount"]) for leg in found] == [
        ("tr-izmir", "it", 6000.0),
        ("tr-bodrum", "gr", 2500.0),
        ("fr-dunkirk", "gb", 2000.0),
    ]


def test_a_single_route_takes_every_price_of_the_post():
    found = legs("UK game from Dunkirk 🇫🇷➡️🇬🇧\nPrice now £1,300 (police everywhere)")
    assert len(found) == 1 and (found[0].origin, found[0].destination) == ("fr-dunkirk", "gb")
    assert [(p["amount"], p["currency"]) for p in found[0].prices] == [(1300.0, "GBP")]


def test_a_left_arrow_reads_backwards_in_latin_script():
    assert route("Italy ⬅️ Izmir") == ("tr-izmir", "it")
    assert route("Italy <- Libya") == ("ly", "it")


def test_flags_are_places_and_a_flag_beside_its_own_place_counts_once():
    assert [m.place for m in mentions("🇫🇷➡️🇬🇧")] == ["fr", "gb"]
    assert [m.place for m in mentions("izmir 🇹🇷 → italy 🇮🇹")] == ["tr-izmir", "it"]
    assert mentions("🇺🇳 🇦🇶") == []  # codes the gazetteer does not hold


def test_a_name_that_is_also_a_common_word_counts_only_beside_an_arrow():
    # Vietnamese "anh" is England, and also "elder brother" or "you" in every other message.
    found = legs("🚤 Xuồng Calais → Anh: 2.500 £\nViệt Nam → Anh: 25.000 £")
    assert [(leg.origin, leg.destination) for leg in found] == [("fr-calais", "gb"), ("vn", "gb")]
    assert route("Việt Nam->Anh") == ("vn", "gb")
    assert route("đi sang Anh từ Calais") == ("fr-calais", "gb")
    # "Pháp" alone (France; also law, method) counts beside an arrow or after "sang" only.
    assert route("Anh → Pháp") == ("gb", "fr")
    assert route("Pháp → Anh: 1.500 £") == ("fr", "gb")
    assert route("sang Pháp") == (None, "fr")
    # Two places gone to: the last is the end, and neither is where the journey starts.
    assert route("Bỉ sang Pháp rồi sang Anh") == route("to France, then to the UK") == (None, "gb")
    assert route("from Libya to Italy, then to France") == ("ly", "fr")
    assert route("Dịch vụ hợp pháp 100%, phương pháp an toàn, sang Anh") == (None, "gb")
    for text in ("em gửi anh số tiền", "cảm ơn anh nhiều", "anh ơi, ảnh → xem"):
        assert route(text) == (None, None), text


def test_a_route_with_one_end_unknown_reads_without_a_question_mark():
    assert route_label("fr-calais", "gb") == "Calais → United Kingdom"
    assert route_label(None, "gb") == "to United Kingdom"
    assert route_label("tr", None) == "from Turkey"
    assert route_label(None, None) is None


def test_handles_and_links_are_not_places():
    assert route("Taxi game tonight @dunkirk_taxi_game t.me/calais_uk") == (None, None)


def test_short_markers_count_only_as_whole_words_before_the_place():
    # "ne" inside "Tirane" and "u" inside "ku" are no markers.
    assert route("Nga Tirana ne Itali") == ("al-tirana", "it")
    assert route("Ka Liibiya ilaa Talyaani") == ("ly", "it")
    assert route("Une voiture de Paris à Londres") == ("fr-paris", "gb-london")


def test_country_of_a_city_and_of_a_region():
    assert country_of("fr-dunkirk") == "fr" and country_of("gb") == "gb" and country_of("europe") == "europe"


def test_a_number_and_its_currency_stay_on_one_line():
    e = extract("UK game every 2 days ☀️ £2,500\nUSDT accepted: TNv8kQ3xWm5RzL2pYc7HdJ4fG9sBtE6uAq", "en")
    assert [(p.amount, p.currency) for p in e.prices] == [(2500.0, "GBP")]


def test_entities_carry_legs_and_old_rows_stay_readable():
    e = extract("🚛 lorry from Belgium to Ireland 🇮🇪 €4,000", "en")
    data = e.to_json()
    assert data["legs"] == [
        {
            "origin": "be",
            "destination": "ie",
            "prices": [{"amount": 4000.0, "currency": "EUR", "text": "€4,000"}],
        }
    ]
    assert (data["origin"], data["destination"]) == ("be", "ie")
    assert isinstance(data["payments"], list) and isinstance(data["wallets"], list)
