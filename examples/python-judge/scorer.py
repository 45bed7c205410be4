"""An example gold annotator for the arithmetic prompts of the micro run ("What is 10 + 7? Answer briefly."): a
response stating the right answer scores 1, any other 0, less a thousandth per character (the shorter of two right
or two wrong answers wins). Replace it with your own `score(prompt, response) -> float`: higher is better."""

import re

QUESTION = re.compile(r"What is (-?\d+) ([+*-]) (-?\d+)\?")


def score(prompt: str, response: str) -> float:
    match = QUESTION.search(prompt)
    right = False
    if match:
        a, op, b = int(match[1]), match[2], int(match[3])
        answer = {"+": a + b, "-": a - b, "*": a * b}[op]
        right = re.search(rf"(?<![\d-]){answer}(?!\d)", response) is not None
    return (1.0 if right else 0.0) - len(response) / 1000
