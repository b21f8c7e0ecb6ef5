"""From passages to an answer: the Assistant (what happens to a question, in order), the evidence
test that refuses before the model runs, the prompt, the Answerer (generative, extractive, auto),
citation verification, extractive quotes, follow-up questions and the evaluation of question
sets.

May import every other sub-package of rag/ except library.py.
"""
