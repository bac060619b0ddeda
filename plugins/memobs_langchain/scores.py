"""Scores for the documents a retriever returns, taken from its vector store.

``BaseRetriever.invoke`` returns bare ``Document`` objects; the similarity
scores exist only inside the vector store call that produced them
(``VectorStoreRetriever`` calls ``similarity_search`` — which in most stores
goes through ``similarity_search_with_score`` — or, with
``search_type="similarity_score_threshold"``, ``similarity_search_with_relevance_scores``,
whose scores come from ``_similarity_search_with_relevance_scores``).

Each instrumented retriever call opens a *collector* (a context variable
holding the results of the score methods called inside it, read into
``{id(document): (document, score)}`` once, when the call returns). The
vector stores' score methods are wrapped to note the pairs they return into
the collector of the retriever call they run in — only that one: a member
retriever of a composite opens its own, so the composite's output
(re-ranked, fused) never borrows a member's scores. The outermost score method returns last, so its
scores win: relevance scores over the raw distances they were computed from.

Score methods called outside any retriever are not recorded (call a retriever,
or instrument the method by dotted path with ``memobs.instrument``).
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from memobs_otel import guard

# The relevance scores are taken from the private methods that compute them, not
# from the public ``similarity_search_with_relevance_scores``: that one warns
# ("Relevance scores must be between 0 and 1", ``stacklevel=2``), and a wrapper
# around it would be the frame the warning names — the warning would point at
# this file instead of the caller, ``warnings`` filters by module would stop
# matching and warnings from different callers would count as one. The pairs it
# returns are the private method's own (filtered by the threshold), so the scores
# are the same. None of the wrapped methods warns in langchain-core.
SCORE_METHODS = (
    "similarity_search_with_score",
    "_similarity_search_with_relevance_scores",
    "similarity_search_with_score_by_vector",
    "asimilarity_search_with_score",
    "_asimilarity_search_with_relevance_scores",
)

collector: ContextVar["Collecting | None"] = ContextVar("memobs_langchain_scores", default=None)


class Collecting:
    """The collector of one retriever call, open while the ``with`` block runs.

    Also the call's ``entities_of`` (``__call__``). Score methods' result
    lists are kept as they are (``note``) and read once, when the call's
    documents are paired with their scores: most calls note the same list
    twice (``similarity_search_with_score`` returning what
    ``similarity_search_with_score_by_vector`` gave it) and some never reach
    the pairing (an exception), so reading at note time would be wasted.
    Later notes win, as the outermost score method returns last.
    """

    __slots__ = ("noted", "_token")

    def __init__(self) -> None:
        self.noted: list = []  # the noted results, in order: lists of (document, score)
        self._token = None

    def __enter__(self) -> "Collecting":
        self._token = collector.set(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        collector.reset(self._token)

    def note(self, result: Any) -> None:
        """Note a score method's result (never raises)."""
        noted = self.noted
        if type(result) is list or type(result) is tuple:
            if not noted or noted[-1] is not result:  # the very list again: nothing new to read
                noted.append(result)
        # anything else (an iterator, a generator) is left alone: reading it
        # would consume what the caller is about to read

    def scores(self) -> dict[int, tuple[Any, float]]:
        """``{id(document): (document, score)}`` from every noted result, later ones winning."""
        scores: dict[int, tuple[Any, float]] = {}
        for result in self.noted:
            guard.safe_invoke("langchain vector store scores", _note, scores, result)
        return scores

    def __call__(self, documents: Any) -> Any:
        """``entities_of`` for ``observe_call``: documents paired with their noted scores."""
        if not self.noted or not isinstance(documents, list):
            return documents
        return view(self.scores(), documents)


def _note(scores: dict, result: list | tuple) -> None:
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
