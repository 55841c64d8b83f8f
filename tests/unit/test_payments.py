"""Payment offices and wallets: the forms adverts write them in, and words that only look like them."""

from __future__ import annotations

import pytest

from pipeline.enrich.payments import fold_name, payment_offices_in, wallet_address, wallets_in

TRC20 = "TNv8kQ3xWm5RzL2pYc7HdJ4fG9sBtE6uAq"


@pytest.mark.parametrize(
    ("text", "offices"),
    [
        ("Pere li Sarafi Azadi dimîne heta tu bigihîjî", ["sarafi azadi"]),
        ("pere li sarafi azadi", ["sarafi azadi"]),
        ("Money stays with SARRAFI Azadi\nWhatsApp +33 7 58 21 46 93", ["sarafi azadi"]),
        ("pere li ofîsa garantiyê (Sarafi Azadi)", ["sarafi azadi"]),
        ("المبلغ عند صرافة آزادي لحد الوصول", ["sarafi azadi"]),
        ("پارەکە لای سەرافی ئازادی دادەنرێت", ["sarafi azadi"]),
        ("Azadi Exchange Office in Erbil", ["sarafi azadi"]),
        ("hawala Baran in Zakho, then mekteb Nawroz", ["hawala baran", "office nawroz"]),
        ("Para Nawroz Döviz'de kalır", ["sarafi nawroz"]),
        ("پول پیش صرافی امید در هرات", ["sarafi amid"]),
    ],
)
def test_offices_in_their_usual_forms(text, offices):
    assert payment_offices_in(text) == offices


@pytest.mark.parametrize(
    "text",
    [
        "Pay on arrival in UK, money stays with hawala office",
        "الضمان عند مكتب بأربيل",  # "the guarantee at an office in Erbil"
        "The Home Office said the boats were stopped",
        "The office Manager will call you",
        "ofîsa garantiyê li Hewlêrê",
        "money exchange near the station",
        "office hours are 9 to 5",
        "پیسې په ګارنټي دفتر کې پاتې کیږي",
        "hawala",
        "",
    ],
)
def test_words_that_are_not_offices(text):
    assert payment_offices_in(text) == []


def test_one_office_however_spelled():
    assert fold_name("Azadî") == fold_name("AZADI") == fold_name("آزادي") == "azadi"


def test_wallets_with_the_currency_the_text_names():
    text = f"Pay at Sarafi Azadi or USDT TRC20 {TRC20}; TRX: {TRC20}"
    assert wallets_in(text) == [f"usdt-trc20:{TRC20}", f"trx:{TRC20}"]
    assert wallets_in(f"wallet {TRC20}") == [f"trc20:{TRC20}"]
    assert wallet_address(f"usdt-trc20:{TRC20}") == TRC20
    eth = "0x742d35Cc6634C0532925a3b844Bc454e4438f44e"
    assert wallets_in(f"ETH {eth} or USDT ERC20 {eth[:-1]}f") == [
        f"eth:{eth.lower()}",
        f"usdt-erc20:{eth.lower()[:-1]}f",
    ]
    # Bitcoin: a legacy address with a valid checksum, and a bech32 one.
    assert wallets_in(
        "BTC 1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2 or bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"
    ) == [
        "btc:1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2",
        "btc:bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN3",  # one character off: the checksum fails
        "Thisisnotawalletbutaverylongwordzz",  # T and 33 letters, no digit
        f"x{TRC20}",  # part of a longer token
        "0x742d35Cc6634C0532925a3b844Bc454e4438f44",  # 39 hex digits
        "call +33 7 58 21 46 93, price 1200 £",
    ],
)
def test_strings_that_are_not_wallets(text):
    assert wallets_in(text) == []
