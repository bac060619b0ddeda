"""Deterministic English-like memory texts (no data set to download)."""

from __future__ import annotations

import random

_WORDS = (
    "the customer prefers email contact in the morning and never by phone unless the order is "
    "urgent refunds over one hundred euros need a manager approval before they are paid shipping "
    "to islands takes three extra days and costs more for parcels above five kilos support agents "
    "should check the account history first then confirm the address with the user a subscription "
    "can be paused for up to two months without losing the discount invoices are sent on the first "
    "working day of each month in pdf format the user asked us to remember that their dog is called "
    "pixel and that they live in lyon playbook step escalate to tier two when the device does not "
    "boot after a factory reset warranty covers battery faults for eighteen months from delivery "
    "password resets require a code sent to the verified phone number the quarterly report lives in "
    "the finance share under reports and is updated every friday afternoon"
).split()


def memory_texts(count: int, seed: int = 7, min_words: int = 15, max_words: int = 120) -> list[str]:
    """``count`` distinct sentences of ``min_words``..``max_words`` words."""
    rng = random.Random(seed)
    texts = []
    for i in range(count):
        words = [rng.choice(_WORDS) for _ in range(rng.randint(min_words, max_words))]
        words[0] = words[0].capitalize()
        texts.append(" ".join(words) + f". Note {i}.")
    return texts
