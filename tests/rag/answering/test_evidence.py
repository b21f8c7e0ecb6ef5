"""Refusals from evidence: stemming, the names rule, relative standing, the calibrated test on the
sample document with the real embedding model."""

import shutil
from pathlib import Path

import pytest

from rag.language.terms import coverage, query_terms, stems, terms
from rag.retrieval.retriever import TYPICAL_Z, _standing
from tests.workspace import Workspace

SAMPLE = Path(__file__).resolve().parents[3] / "data" / "harbour-light-handbook.md"


def test_word_checks_compare_stems():
    passage = stems(terms("The rescue launch is crewed by two qualified volunteers."))
    assert coverage(query_terms("Who crews the rescue launch?"), passage) == 1.0
    assert coverage(query_terms("How are renewals charged?"), stems(terms("renewing is charged"))) == 1.0


def test_a_passage_that_stands_out_from_the_rest_is_measured_relative_to_them():
    best, z = _standing([0.9] + [0.3, 0.32, 0.28, 0.31, 0.29] * 4)
    assert best == 0.9 and z > 4
    _, flat = _standing([0.5 + i / 1000 for i in range(20)])
    assert flat < 2
    assert _standing([0.7, 0.2]) == (0.7, TYPICAL_Z)  # too few candidates to stand out from


@pytest.fixture(scope="module")
def sample(tmp_path_factory, real_embedder):
    root = tmp_path_factory.mktemp("sample")
    (root / "data").mkdir()
    shutil.copy(SAMPLE, root / "data")
    ws = Workspace.make(root, real_embedder, answer_mode="extractive")
    ws.indexer.ingest()
    return ws


@pytest.mark.parametrize("question, fact", [
    ("Who crews the rescue launch?", "two qualified volunteers"),  # "crews" / "is crewed by"
    ("Is the boathouse open on Christmas day?", "25 December"),  # "Christmas" is not a name
    ("What wind speed stops boats from going out?", "25 knots"),
    ("What is the penalty for renewing late?", "15 euros"),
])
def test_questions_the_sample_answers_are_answered_from_it(sample, question, fact):
    answer = sample.assistant.ask(question)
    assert not answer.refused and fact in answer.answer and answer.mode == "extractive"


@pytest.mark.parametrize("question, reason", [
    ("Is there a discount for families?", "no passage answers it"),
    ("Can I bring my dog on the boats?", "no passage answers it"),
    ("How do I configure Patroni failover?", "never mention 'patroni'"),
    ("What does the pg_boat_log table hold?", "never mention 'pg_boat_log'"),
])
def test_questions_it_does_not_answer_are_refused_with_the_reason(sample, question, reason):
    answer = sample.assistant.ask(question)
    assert answer.refused and reason in answer.reason


def test_a_colloquial_chinese_question_finds_the_formal_sentence_by_its_characters():
    from rag.retrieval.sentence_scores import character_overlap

    formal = "凡居住在青石街道的居民，凭本人身份证即可免费办理借阅证。"
    # 借书证 / 借阅证 share no character pair beyond the question words; 办, 借, 证 are shared.
    assert character_overlap("办借书证要钱吗？", formal) >= 0.5
    assert character_overlap("办借书证要钱吗？", "每周六下午两点在一楼多功能厅举办亲子阅读活动。") < 0.5
    # Question words and particles count for nothing: only 停车场 is asked about.
    assert character_overlap("图书馆有停车场吗？", "停车场在大楼后面。") == pytest.approx(3 / 6, abs=0.01)


@pytest.mark.parametrize("question, sentence", [
    ("办借书证要钱吗？", "凭本人身份证即可免费办理借阅证。"),  # free answers "does it cost"
    ("Is the first replacement charged?", "The first replacement is free."),
    ("报销的钱多久到账？", "报销款在十个工作日内打入员工工资卡。"),  # working days are a duration
    ("How long does a refund take?", "Refunds are paid within ten working days."),
])
def test_a_sentence_holding_the_kind_of_fact_asked_for_is_recognised(question, sentence):
    from rag.retrieval.sentence_scores import asked_kinds, shown_kinds

    assert asked_kinds(question) & shown_kinds(sentence)


def test_a_weak_evidence_refusal_points_to_the_closest_sentence(sample):
    # "sit on the board" / "an elected board of seven members": the embedder rates it too low
    # to answer, but the user sees the sentence that came closest, marked as not an answer.
    answer = sample.assistant.ask("How many people sit on the board?")
    assert answer.refused and "no passage answers it" in answer.reason
    assert answer.answer.startswith("No passage clearly answers this question. The closest one says:")
    assert "board of seven members" in answer.answer
    quoted = [c for c in answer.citations if c.quote]
    assert len(quoted) == 1 and "seven members" in quoted[0].quote
