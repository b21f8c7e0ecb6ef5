"""Denials found by their cues, and the common Chinese words that only look like one."""

import pytest

from rag.language.polarity import answers_no, negates


@pytest.mark.parametrize("sentence", [
    "No, the passage does not mention a discount.", "Members can't park on the quay.",
    "Nobody may sail alone.", "Keelboats are never lent out.", "办理借书证不收费。", "没有提前付款的折扣。",
    "逾期未还的图书无法续借。", "并非所有会员都能借阅。"])
def test_a_denial_is_found(sentence):
    assert negates(sentence)


@pytest.mark.parametrize("sentence", [
    "Customers who pay within 10 days receive a discount of 2 percent.",
    "The club owns fourteen dinghies.", "不同的用户有不同的权限。", "馆内藏书非常丰富。",
    "未来三天闭馆。", "可以帮别人代借图书。", "无论会员与否都可以入馆。"])
def test_an_affirmation_is_not_a_denial(sentence):
    assert not negates(sentence)


def test_a_reply_that_answers_no():
    assert answers_no("No, there is no discount.") and answers_no("不，需要提前预约。")
    assert answers_no("没有，图书馆不提供停车位。")
    assert not answers_no("Nothing is charged for ordinary wear.")
    assert not answers_no("Yes, a 2 percent discount.") and not answers_no("不同的会员费用不同。")
