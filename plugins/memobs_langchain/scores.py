"""Scores for the documents a retriever returns, taken from its vector store.

``BaseRetriever.invoke`` returns bare ``Document`` objects; the similarity
scores exist only inside the vector store call that produced them
(``VectorStoreRetriever`` calls ``similarity_search`` — which in most stores
goes through ``similarity_search_with_score`` — or, with
``search_type="similarity_score_threshold"``, ``similarity_search_with_relevance_scores``).

Each instrumented retriever call opens a *collector* (a context variable
holding ``{id(document): (document, score)}``). The vector stores' score
methods are wrapped to note the pairs they return into the collector of the
retriever call they run in — only that one: a member retriever of a
composite opens its own, so the composite's output (re-ranked, fused) never
borrows a member's scores. The outermost score method returns last, so its
scores win: relevance scores over the raw distances they were computed from.

Score methods called outside any retriever are not recorded (call a retriever,
or instrument the method by dotted path with ``memobs.instrument``).
"""

from __future__ import annotations

from contextvars import ContextVar
from operator import is_
from typing import Any

from memobs_otel import guard

SCORE_METHODS = (
    "similarity_search_with_score",
    "similarity_search_with_relevance_scores",
    "similarity_search_with_score_by_vector",
    "asimilarity_search_with_score",
    "asimilarity_search_with_relevance_scores",
)

collector: ContextVar["Collecting | None"] = ContextVar("memobs_langchain_scores", default=None)


class Collecting:
    """The collector of one retriever call, open while the ``with`` block runs.

    Also the call's ``entities_of`` (see ``view``). ``last``/``snapshot``: the
    list of pairs noted last and its elements then; a score method that
    returns that very list unchanged (``similarity_search_with_score``
    returning what ``similarity_search_with_score_by_vector`` gave it) would
    note exactly the same entries again, so it is skipped.
    """

    __slots__ = ("scores", "_token", "last", "snapshot")

    def __init__(self) -> None:
        self.scores: dict[int, tuple[Any, float]] = {}
        self._token = None
        self.last: list | None = None
        self.snapshot: tuple = ()

    def __enter__(self) -> dict[int, tuple[Any, float]]:
        self._token = collector.set(self)
        return self.scores

    def __exit__(self, *exc: Any) -> None:
        collector.reset(self._token)

    def note(self, result: Any) -> None:
        """Note the ``(document, score)`` pairs of a score method's result (guarded)."""
        if type(result) is list:
            if result is self.last and len(result) == len(self.snapshot) and all(map(is_, result, self.snapshot)):
                return  # the same pairs as the last note: nothing would change
            self.last, self.snapshot = result, tuple(result)
        else:
            self.last, self.snapshot = None, ()
        guard.safe_invoke("langchain vector store scores", _note, self.scores, result)

    def __call__(self, documents: Any) -> Any:
        """``entities_of`` for ``observe_call``: documents paired with their noted scores."""
        return view(self.scores, documents)


def _note(scores: dict, result: Any) -> None:
    if type(result) is list:
        try:
            scores.update({id(pair[0]): (pair[0], float(pair[1]))
                           for pair in result if isinstance(pair, tuple) and len(pair) == 2})
            return
        except Exception:  # noqa: BLE001 - the loop below notes the pairs before the bad one, then raises
            pass
    for pair in result:
        if isinstance(pair, tuple) and len(pair) == 2:
            doc, score = pair
            scores[id(doc)] = (doc, float(score))


def note_scores(wrapped, instance, args, kwargs):
    result = wrapped(*args, **kwargs)
    collecting = collector.get()
    if collecting is not None:
        collecting.note(result)
    return result


async def anote_scores(wrapped, instance, args, kwargs):
    result = await wrapped(*args, **kwargs)
    collecting = collector.get()
    if collecting is not None:
        collecting.note(result)
    return result


def view(scores: dict, documents: Any) -> Any:
    """Documents paired with their noted scores (a document noted under another object's id is not)."""
    if not scores or not isinstance(documents, list):
        return documents
    get = scores.get
    return [(doc, hit[1]) if (hit := get(id(doc))) is not None and hit[0] is doc else doc for doc in documents]


def with_scores(scores: dict):
    """``entities_of`` for ``observe_call``: documents paired with their noted scores."""
    return lambda documents: view(scores, documents)
