"""A labelled set of twin / non-twin memory pairs for the ``duplicate`` signal.

``PAIRS`` is a list of ``(a, b, twin)``. What "twin" means here (and in
docs/signals.md): the same memory told again — the same words up to case,
punctuation, articles, plural ``s``, spacing and British/American spelling,
or a long text (15 words or more) with one to three words changed, added or
removed. Not twins: a one-sentence memory whose key word changed (a window
seat is not an aisle seat, 500 euros are not 600, "likes" is not
"dislikes"), one that gained a fact, and two different texts on one topic.
A one-letter typo inside a one-sentence memory is left out on purpose: no
content-free fingerprint can tell it from a changed fact ("500" / "600").

Written by hand (``HAND``) and by rule (``rule_pairs``, seeded, from a
vocabulary of memory-like words), short and long, twins and non-twins.
"""

from __future__ import annotations

import random

HAND: list[tuple[str, str, bool]] = [
    # short twins (mem0-style one-sentence memories)
    ("prefers a window seat", "prefers window seats", True),
    ("Prefers a window seat.", "prefers a window seat", True),
    ("User is vegetarian", "user is vegetarian.", True),
    ("Lives in Lyon", "lives in Lyon!", True),
    ("Has a dog named Pixel", "Has a dog named Pixel.", True),
    ("Favourite colour is blue", "favourite colour is blue", True),
    ("Allergic to peanuts", "allergic to peanuts", True),
    ("Works as a nurse", "works as nurse", True),
    ("Likes the beach", "likes beaches", True),
    ("Prefers email over phone calls", "prefers email over phone call", True),
    ("Is learning Spanish", "Is learning   Spanish", True),
    ("Drinks coffee without sugar", "drinks coffee, without sugar", True),
    ("Birthday is on 3 March", "birthday is on 3 March.", True),
    ("Plays the guitar", "plays guitar", True),
    ("Wants vegetarian recipes", "wants vegetarian recipe", True),
    ("Name is Ana", "name is ana", True),
    ("Travels to Berlin for work every month", "travels to Berlin for work every month", True),
    ("Uses a MacBook for work", "uses a macbook for work", True),
    # short non-twins: one key word changed, a fact added, another fact
    ("prefers a window seat", "prefers an aisle seat", False),
    ("User is vegetarian", "User is vegan", False),
    ("Lives in Paris", "Lives in Berlin", False),
    ("likes coffee", "dislikes coffee", False),
    ("Budget is 500 euros", "Budget is 600 euros", False),
    ("Has a dog named Pixel", "Has a cat named Pixel", False),
    ("Allergic to peanuts", "Allergic to peanuts and shellfish", False),
    ("Works as a nurse", "Works as a teacher", False),
    ("Prefers tea", "Prefers coffee", False),
    ("Is learning Spanish", "Is learning Italian", False),
    ("Birthday is on 3 March", "Birthday is on 13 March", False),
    ("Plays the guitar", "Plays the piano", False),
    ("Name is Ana", "Name is Anna Maria", False),
    ("Prefers morning meetings", "Prefers evening meetings", False),
    ("Has two children", "Has three children", False),
    ("Wants to visit Japan", "Wants to visit Jordan", False),
    ("Drinks coffee without sugar", "Drinks tea without milk", False),
    ("Uses Linux at home", "Uses Windows at home", False),
    # long twins: one to three words changed in a document
    (
        "Refunds over one hundred euros need a manager approval before they are paid to the customer account.",
        "Refunds over two hundred euros need a manager approval before they are paid to the customer account.",
        True,
    ),
    (
        "Shipping to islands takes three extra days and costs more for parcels above five kilos in weight.",
        "Shipping to the islands takes three extra days and costs more for parcels above five kilos in weight.",
        True,
    ),
    (
        "Password resets require a code sent to the verified phone number of the account holder first.",
        "Password resets require a code sent to the verified email address of the account holder first.",
        True,
    ),
    (
        "A subscription can be paused for up to two months without losing the discount or the saved settings.",
        "A subscription can be paused for up to three months without losing the discount or the saved settings.",
        True,
    ),
    (
        "Invoices are sent on the first working day of each month in PDF format to the billing contact.",
        "Invoices are sent on the first working day of every month in PDF format to the billing contact.",
        True,
    ),
    (
        "Escalate to tier two when the device does not boot after a factory reset and the battery is charged.",
        "Escalate to tier two when the device still does not boot after a factory reset and the battery is charged.",
        True,
    ),
    # long non-twins: same topic, other content
    (
        "Refunds over one hundred euros need a manager approval before they are paid to the customer account.",
        "Refunds are paid within five working days to the card the customer used, never in cash at a shop.",
        False,
    ),
    (
        "Shipping to islands takes three extra days and costs more for parcels above five kilos in weight.",
        "Express shipping is free for members and arrives the next working day when ordered before noon.",
        False,
    ),
    (
        "Password resets require a code sent to the verified phone number of the account holder first.",
        "Accounts are locked after five failed logins and unlocked by support after a video identity check.",
        False,
    ),
    (
        "The quarterly report lives in the finance share under reports and is updated every Friday afternoon.",
        "The annual budget is drafted in October by the finance team and approved by the board in December.",
        False,
    ),
]

_VOCABULARY = (
    "customer order refund parcel invoice account manager support device battery warranty "
    "subscription discount address delivery payment contract schedule meeting report budget "
    "password email phone office travel hotel flight booking holiday project deadline review "
    "approval shipping island kilo month week friday morning evening team member policy rule "
    "exception request ticket priority escalation tier reset factory code verified number share"
).split()
_FILLER = "the a of to in for and with on after before when by from is are was be".split()
_SUBJECTS = ["prefers", "likes", "wants", "needs", "owns", "avoids", "uses", "books"]
_OBJECTS = [
    "window seat", "aisle seat", "green tea", "black coffee", "red wine", "train ticket",
    "hotel room", "electric car", "paper invoice", "night flight", "quiet office", "standing desk",
]


def _long_text(rng: random.Random, words: int) -> list[str]:
    return [rng.choice(_VOCABULARY if rng.random() < 0.7 else _FILLER) for _ in range(words)]


def rule_pairs(seed: int = 19) -> list[tuple[str, str, bool]]:
    """Generated pairs: 25 short twins, 25 short non-twins, 25 long twins, 25 long non-twins."""
    rng = random.Random(seed)
    pairs: list[tuple[str, str, bool]] = []
    combos = [(s, o) for s in _SUBJECTS for o in _OBJECTS]
    rng.shuffle(combos)
    for subject, obj in combos[:25]:
        # the same fact told again: article, plural, case, punctuation
        article = rng.choice(["a ", "the ", ""])
        a = f"{subject.capitalize()} {article}{obj}."
        b = f"{subject} {obj}s" if rng.random() < 0.5 else f"{subject.upper()} {obj}!"
        pairs.append((a, b, True))
    for subject, obj in combos[25:50]:
        # the object changed: another fact
        other = rng.choice([o for o in _OBJECTS if o.split()[0] != obj.split()[0] and o.split()[1] != obj.split()[1]]
                           or [o for o in _OBJECTS if o != obj])
        pairs.append((f"{subject.capitalize()} a {obj}.", f"{subject.capitalize()} a {other}.", False))
    for _ in range(25):
        words = _long_text(rng, rng.randint(15, 80))
        edited = list(words)
        for _ in range(rng.randint(1, 3)):
            op = rng.choice(["replace", "insert", "delete"])
            i = rng.randrange(len(edited))
            if op == "replace":
                edited[i] = rng.choice(_VOCABULARY)
            elif op == "insert":
                edited.insert(i, rng.choice(_VOCABULARY))
            else:
                del edited[i]
        pairs.append((" ".join(words).capitalize() + ".", " ".join(edited).capitalize() + ".", True))
    for _ in range(25):
        n = rng.randint(15, 80)
        words = _long_text(rng, n)
        if rng.random() < 0.5:
            other = _long_text(rng, rng.randint(15, 80))  # another text on the same vocabulary
        else:
            other = list(words)  # the same text with half of its words replaced
            for i in rng.sample(range(n), n // 2):
                other[i] = rng.choice(_VOCABULARY)
        pairs.append((" ".join(words).capitalize() + ".", " ".join(other).capitalize() + ".", False))
    return pairs


PAIRS: list[tuple[str, str, bool]] = HAND + rule_pairs()
