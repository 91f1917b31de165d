"""How figures and names read on every screen: one way each."""

from __future__ import annotations

from screens.formats import cut_names, figure, money, pdd, percent, seconds


def test_two_names_that_start_alike_never_read_the_same_in_a_list():
    names = ["Helpline Contact Centre", "Helpline Contact Centre 2",
             "Atlas Voice International Ltd", "Blue VoIP"]
    shown = cut_names(names, 20)
    assert shown == ["Helpline Conta…entre", "Helpline Conta…tre 2", "Atlas Voice Interna…",
                     "Blue VoIP"]
    assert all(len(name) <= 20 for name in shown) and len(set(shown)) == len(shown)


def test_percent_duration_pdd_and_money_each_read_one_way():
    assert (percent(49.74), percent(None)) == ("49.7%", "–")
    assert (seconds(164.4), seconds(2.06, 1), pdd(2063)) == ("164 s", "2.1 s", "2.1 s")
    assert (figure(1234.5), figure(2.06, 1)) == ("1,234", "2.1")
    assert (money(1234.5, "USD"), money(0.024, "EUR", 4), money(-0.001)) == (
        "1,234.50 USD", "0.0240 EUR", "0.00")
