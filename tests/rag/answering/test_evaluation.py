import json

from tests.corpus import FACTS

import pytest

from rag.answering.evaluation import Question, evaluate, first_hit_rank, load_questions
from rag.core.errors import ArchivistError
from rag.core.shapes import Chunk, Hit


def hit(source, relevant=True):
    return Hit(Chunk("id", source, "", 0, 0, None, None, "", 0, ""), 0.5, relevant=relevant)


def test_load_questions_validates_lines(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text('{"id": "a", "q": "one?", "expect": ["x"]}\n\n{"id": "b", "q": "two?"}\n')
    assert load_questions(path) == [Question("a", "one?", ("x",)), Question("b", "two?", ())]
    path.write_text('{"id": "a", "q": "one?"}\n{"q": "no id"}\n')
    with pytest.raises(ArchivistError, match="q.jsonl:2"):
        load_questions(path)
    path.write_text('{"id": "a", "q": "1"}\n{"id": "a", "q": "2"}\n')
    with pytest.raises(ArchivistError, match="duplicate"):
        load_questions(path)


def test_ranks_match_file_stems():
    assert first_hit_rank(["docs/a.html", "pg/sql-select.html"], ["sql-select"]) == 2
    assert first_hit_rank(["zh/ch04.zh-cn.html"], ["ch04.zh-cn"]) == 1
    assert first_hit_rank(["x.html"], ["y"]) is None


def test_metrics():
    results = {
        "first": [hit("a.html"), hit("b.html")],
        "second": [hit("b.html"), hit("a.html")],
        "missed": [hit("c.html")] * 6,
        "nothing": [hit("c.html", relevant=False)],
        "fooled": [hit("c.html")],
    }
    questions = [Question("1", "first", ("a",)), Question("2", "second", ("a",)),
                 Question("3", "missed", ("a",)), Question("4", "nothing", ()),
                 Question("5", "fooled", ())]
    report = evaluate("t", questions, lambda q, k: results[q], 10)
    assert (report.answerable, report.unanswerable) == (3, 2)
    assert report.hit_at_1 == round(1 / 3, 4) and report.hit_at_5 == round(2 / 3, 4)
    assert report.mrr_at_10 == round((1 + 0.5 + 0) / 3, 4)
    assert report.refused_unanswerable == 0.5 and report.refused_answerable == 0.0
    assert [m["id"] for m in report.misses] == ["3"]
    json.dumps(report.to_dict())


def stem_of(source):
    return source.rsplit("/", 1)[-1].rsplit(".", 1)[0]


def test_eval_with_answers_on_the_test_corpus(ingested, tmp_path, monkeypatch):
    expect = {q: stem_of(src) for q, (src, _) in FACTS.items()}
    absent = "What is the boiling point of the Quasar reactor coolant?"
    path = tmp_path / "q.jsonl"
    path.write_text("\n".join([json.dumps({"id": str(i), "q": q, "expect": [stem]})
                               for i, (q, stem) in enumerate(expect.items())]
                              + [json.dumps({"id": "absent", "q": absent})]))
    from rag.answering import evaluation

    asked = {}  # what the model answered each question, to check the report against
    metrics = evaluation.evaluate_answers
    monkeypatch.setattr(evaluation, "evaluate_answers", lambda name, questions, ask, mode: metrics(
        name, questions, lambda q: asked.setdefault(q, ask(q)), mode))
    retrieval, answers = [r.to_dict() for r in ingested.assistant.evaluate([path], 5, answers=True)]
    assert retrieval["hit_at_1"] == 1.0 and retrieval["answerable"] == len(FACTS)
    assert retrieval["unanswerable"] == 1 and retrieval["refused_unanswerable"] == 1.0

    # The answer metrics, recomputed from what the model said to each question.
    assert set(asked) == set(expect) | {absent} and asked[absent].refused
    answered = [(asked[q], stem) for q, stem in expect.items() if not asked[q].refused]
    sentences = [(s, {c.id: c.source for c in a.citations}, stem) for a, stem in answered for s in a.sentences]
    cited = [stem_of(sources[s.citation]) == stem for s, sources, stem in sentences if s.citation is not None]
    assert len(answered) > len(FACTS) / 2 and cited  # the model answers most questions, citing
    expected = {"answered": len(answered), "refused_unanswerable": 1.0,
                "refused_answerable": round(sum(asked[q].refused for q in expect) / len(FACTS), 4),
                "supported_sentences": round(sum(s.supported for s, *_ in sentences) / len(sentences), 4),
                "citation_precision": round(sum(cited) / len(cited), 4)}
    assert {key: answers[key] for key in expected} == expected


def test_answer_metrics():
    from rag.answering.evaluation import evaluate_answers
    from rag.core.shapes import Answer, Citation, SentenceSupport

    def citation(i, source):
        return Citation(id=i, source=source, page=None, heading=None, score=0.5, text="t",
                        chunk_id="c", start=0, end=1)

    def sentence(supported, cited):
        return SentenceSupport(text="s", supported=supported, citation=cited, score=0.5,
                               quote_start=None, quote_end=None)

    answers = {
        "good": Answer(answer="a", refused=False, citations=[citation(1, "x/a.html"), citation(2, "b.txt")],
                       sentences=[sentence(True, 1), sentence(True, 2), sentence(False, None)]),
        "refused": Answer(answer="no", refused=True, citations=[]),
        "none-refused": Answer(answer="no", refused=True, citations=[]),
    }
    questions = [Question("1", "good", ("a",)), Question("2", "refused", ("a",)),
                 Question("3", "none-refused", ())]
    report = evaluate_answers("t", questions, answers.__getitem__)
    assert report.answered == 1 and report.refused_answerable == 0.5
    assert report.refused_unanswerable == 1.0
    assert report.supported_sentences == round(2 / 3, 4) and report.citation_precision == 0.5
