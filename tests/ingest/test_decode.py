import pytest

from ingest.decode import decode_text
from rag.core.errors import ParseError

ZH_SIMPLIFIED = "公司员工每年享有十五天带薪年假，未使用的年假可以顺延到下一年度。差旅费用须在三十日内报销。"
ZH_TRADITIONAL = "差旅費用必須在出差結束後三十日內提交報銷申請，逾期不予受理。員工每年享有十五天特休。"


@pytest.mark.parametrize("encoding, text", [
    ("utf-8", "Grüße, naïve café — 年假"),
    ("gbk", ZH_SIMPLIFIED),
    ("gb18030", ZH_SIMPLIFIED),
    ("big5", ZH_TRADITIONAL),
    ("utf-16", "Visitors park in the blue zone. 访客停车"),
    ("utf-8-sig", "BOM then text"),
    ("utf-16-le", "No BOM: visitors park in the blue zone. 访客停车"),
    ("utf-16-be", "No BOM, big-endian: the canteen serves lunch."),
    ("latin-1", "Le garçon a mangé une crème brûlée à la fenêtre. Grüße aus Köln."),
    ("cp1250", "Příliš žluťoučký kůň úpěl ďábelské ódy."),
])
def test_decodes_common_encodings(encoding, text):
    decoded, _ = decode_text(text.encode(encoding))
    assert decoded == text


def test_binary_is_rejected_with_a_reason():
    with pytest.raises(ParseError, match="binary"):
        decode_text(bytes(range(256)) * 20)


def test_binary_with_zero_bytes_at_both_parities_is_not_taken_for_utf16():
    import random

    data = bytes(random.Random(3).choice([0, 0, 65, 66, 200, 7]) for _ in range(4000))
    with pytest.raises(ParseError, match="binary"):
        decode_text(data)
