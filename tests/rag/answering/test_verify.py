"""Citation verification logic, with the deterministic bag-of-words embedder."""

from rag.answering.verify import Verifier
from rag.core.shapes import Chunk
from tests.fakes import FakeEmbedder

TEXT_1 = "The turbine produces 4.2 megawatts at rated wind speed. It was installed in 2019."
TEXT_2 = "The emergency valve is painted bright orange. Technicians check it every month."
TEXT_ZH = "公司员工每年享有十五天带薪年假。未使用的年假可以顺延到下一年度。"


def chunk(text, start):
    return Chunk("c" + str(start), "doc.txt", text, start, start + len(text), None, None, "h", 0, "f")


PASSAGES = [[chunk(TEXT_1, 100)], [chunk(TEXT_2, 500)], [chunk(TEXT_ZH, 900)]]


def check(answer):
    return Verifier(FakeEmbedder(), threshold=0.5).check(answer, PASSAGES)


def test_supported_sentence_keeps_its_correct_marker_and_gets_a_quote():
    fixed, [verdict] = check("The turbine produces 4.2 megawatts at rated wind speed [1].")
    assert verdict.supported and verdict.citation == 1
    assert fixed == "The turbine produces 4.2 megawatts at rated wind speed [1]."
    assert verdict.quote == "The turbine produces 4.2 megawatts at rated wind speed."
    assert TEXT_1[verdict.quote_start - 100:verdict.quote_end - 100] == verdict.quote


def test_wrong_marker_is_moved_and_missing_marker_added():
    fixed, verdicts = check("The emergency valve is painted bright orange [1]. "
                            "The turbine produces 4.2 megawatts.")
    assert [v.citation for v in verdicts] == [2, 1]
    assert fixed == "The emergency valve is painted bright orange [2]. The turbine produces 4.2 megawatts [1]."


def test_invented_sentence_is_unsupported_and_loses_its_marker():
    fixed, verdicts = check("The valve is orange [2]. The Royal Navy uses channel 16 for broadcasts [2].")
    assert [v.supported for v in verdicts] == [True, False]
    assert verdicts[1].citation is None and verdicts[1].quote_start is None
    assert fixed.endswith("The Royal Navy uses channel 16 for broadcasts.")


def test_chinese_sentences_are_matched_by_their_words():
    fixed, [verdict] = check("员工每年享有十五天带薪年假。")
    assert verdict.supported and verdict.citation == 3
    assert verdict.quote == "公司员工每年享有十五天带薪年假。"


def test_empty_answer():
    assert check("") == ("", [])


def test_layout_between_sentences_is_kept():
    fixed, _ = check("员工每年享有十五天带薪年假。\n- The valve is painted bright orange [1].")
    assert fixed == "员工每年享有十五天带薪年假 [3]。\n- The valve is painted bright orange [2]."


def test_fragments_are_neither_checked_nor_quoted():
    numbered = [[chunk("1.1.2. The valve is painted bright orange for night work.", 0)]]
    fixed, verdicts = Verifier(FakeEmbedder()).check(
        "1.1.2. Steps:\n```sql [1]\nThe valve is painted bright orange for night work.", numbered)
    assert [v.text for v in verdicts] == ["The valve is painted bright orange for night work."]
    assert verdicts[0].quote == "The valve is painted bright orange for night work."
    assert "```sql [1]" in fixed  # fragments are left as the model wrote them
