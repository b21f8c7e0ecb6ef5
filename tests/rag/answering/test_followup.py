"""Follow-up questions made to stand alone, and answered by what is new in them."""

import pytest

from rag.answering.followup import needs_context, standalone, subject
from tests.fakes import FakeEmbedder
from tests.workspace import Workspace

HANDBOOK = ("# Membership\n\nFull membership costs 240 euros per year.\n\n"
            "Junior members under eighteen pay 60 euros per year.\n\n"
            "# Safety\n\nThe rescue launch is crewed by two qualified volunteers. "
            "Its radio works on VHF channel 72.\n")


def test_the_subject_of_a_question_is_its_longest_run_of_content_words():
    assert subject("Tell me about the rescue launch.") == "rescue launch"
    assert subject("What are the boathouse opening hours?") == "boathouse opening hours"
    assert subject("How much?") is None


@pytest.mark.parametrize("question, needed", [
    ("Who crews it?", True), ("And for juniors?", True), ("What about keelboats?", True),
    ("How much is full membership?", False), ("那其他城市呢？", True), ("每次能用多久？", True),
    ("在北京出差住宿标准是多少？", False),
])
def test_what_needs_the_conversation(question, needed):
    assert needs_context(question) is needed


def test_pronouns_are_resolved_and_ellipses_searched_with_the_question_before():
    after = [("Tell me about the rescue launch.", "…")]
    assert standalone("Who crews it?", after).query == "Who crews the rescue launch?"
    follow = standalone("And for juniors?", [("How much is full membership?", "…")])
    assert follow.query == "How much is full membership? And for juniors?"
    assert follow.focus == "And for juniors?"  # the answer is found by what is new
    assert standalone("那其他城市呢？", [("在北京出差住宿标准是多少？", "…")]).query == \
        "在北京出差住宿标准是多少？ 那其他城市呢？"
    question = "How much is full membership?"  # names its own subject: left alone
    assert standalone(question, after).query == question and standalone(question, []).query == question


def test_a_chat_answers_the_follow_up_not_the_question_before(tmp_path):
    ws = Workspace.make(tmp_path, FakeEmbedder(), min_score=0.1, min_evidence=0.0,
                        answer_mode="extractive")
    ws.settings.data_dir.mkdir(parents=True)
    (ws.settings.data_dir / "handbook.md").write_text(HANDBOOK)
    ws.indexer.ingest()
    conversation, first = ws.assistant.chat("How much is full membership?")
    assert "240 euros" in first.answer
    _, follow = ws.assistant.chat("And for juniors?", conversation)
    assert "60 euros" in follow.answer and "240" not in follow.answer
    assert follow.query == "How much is full membership? And for juniors?"
    conversation, _ = ws.assistant.chat("Tell me about the rescue launch.")
    _, crew = ws.assistant.chat("Who crews it?", conversation)
    assert crew.query == "Who crews the rescue launch?" and "two qualified volunteers" in crew.answer
