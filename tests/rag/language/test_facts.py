"""Facts of a sentence, normalised so that one fact written two ways compares equal."""

import pytest

from rag.language.facts import chinese_to_number, facts, missing, normalize

PASSAGE = ("It owns fourteen dinghies, three keelboats and the red-brick boathouse on the north quay. "
           "It is closed on 25 December and 1 January. Members pay the first 150 euros of the cost "
           "of damage. The boathouse opens from 8:00 to 20:00. Its call sign is Harbour Light One, "
           "on VHF channel 72.")


def values(text, **kwargs):
    return [(f.kind, f.value) for f in facts(text, **kwargs)]


@pytest.mark.parametrize("a, b", [
    ("fourteen dinghies", "14 dinghies"),
    ("two hundred and fifty euros", "250 euros"),
    ("twenty-five knots", "25 knots"),
    ("十四条船", "14条船"),
    ("on 25 December", "on Dec 25th"),
    ("on 25 December", "12月25日"),
    ("二〇二四年", "2024年"),
    ("2 percent", "2%"),
    ("百分之二", "2%"),
    ("at 8 pm", "at 20:00"),
    ("晚上九点", "21:00"),
    ("下午两点", "14:00"),
    ("零点一元", "0.1元"),
    ("1,500 pounds", "1500 pounds"),
])
def test_one_fact_written_two_ways_compares_equal(a, b):
    assert [v for _, v in values(a)] == [v for _, v in values(b)] != []


def test_chinese_numerals():
    assert [chinese_to_number(t) for t in ("十", "十五", "二十", "三十", "一百零五", "六百", "五千", "两万",
                                           "二〇二四", "零点一")] == [10, 15, 20, 30, 105, 600, 5000, 20000, 2024, 0.1]
    # A single numeral counts only before a measure word: 一律 and 一般 are words, 一次 is once.
    assert values("员工出差一律乘坐经济舱，一般不超过一次。") == [("number", "1")]
    assert values("每周一闭馆") == [("weekday", "1")]


def test_codes_names_and_what_is_not_a_fact():
    assert values("Use pg_stat_io, mongod.conf, ORA-01555 and NF-Guest.") == [
        ("code", "pg_stat_io"), ("code", "mongod.conf"), ("code", "ora-01555"), ("code", "nf-guest")]
    assert values("The Royal Navy (RAN) patrols here.") == [
        ("name", "royal"), ("name", "navy"), ("code", "ran")]
    assert values("No one may sail alone; one of the members must go.") == []
    # A capitalised word starting a sentence is a name only if it is not a common word.
    assert values("Kerrowan is a port. Members pay.", vocabulary=lambda w: w != "kerrowan") == [
        ("name", "kerrowan")]


def test_missing_facts_are_the_ones_the_passage_does_not_state():
    invented = missing("The club has 14 members, with 20 boats, a total of 35 boats.", PASSAGE)
    assert [f.value for f in invented] == ["20", "35"]  # "14" is "fourteen" in the passage
    assert [str(f) for f in missing("You are fined 10% of the total cost.", PASSAGE)] == ["10%"]
    assert missing("It is closed on Dec 25 and opens at 8 am.", PASSAGE) == []
    assert missing("Its call sign is Harbour Light One on channel 72.", PASSAGE) == []
    assert [f.value for f in missing("The Royal Australian Navy uses channel 72.", PASSAGE)] == [
        "royal", "australian", "navy"]


def test_normalised_text_for_comparing_answers():
    assert normalize("It owns Fourteen  dinghies") == "it owns 14 dinghies"
    assert normalize("十五个工作日内") == "15个工作日内"
    assert normalize("backed up at 02:00") == "backed up at 2:00"
    assert "14 dinghies" in normalize(PASSAGE)
