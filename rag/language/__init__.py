"""Text as the search and the answer checks see it: scripts (CJK) and sentence splitting, search
terms (jieba, stemming, Traditional to Simplified), and checkable facts (numbers, dates, codes,
names, normalised).

May import rag.core only.  No models, no storage: pure functions over strings.
"""
