"""Token counts of chat-completions messages, as the model bills them.

**Exact**, where the model's encoding is known (``encoding_for``) and ``tiktoken`` is
installed: tiktoken's BPE over the encoding's vocabulary read from a local file, whose
SHA-256 must be the one tiktoken itself expects. The files looked for, in order:

1. tiktoken's cache, where tiktoken keeps a file it downloaded (``$TIKTOKEN_CACHE_DIR``,
   else ``$DATA_GYM_CACHE_DIR``, else ``<temp dir>/data-gym-cache``; the file is named by
   the SHA-1 of its download address, as tiktoken names it), so an operator can seed it;
2. the copy shipped inside the ``bpe-openai`` wheel (``bpe_openai/data/<name>.tiktoken.gz``),
   found without importing that package.

tiktoken's own loader is never called: it downloads a missing file, and a machine without
internet would hang or fail in the middle of a turn. Nothing here opens a connection.

**Estimate** otherwise (tiktoken missing, no vocabulary file, or a model whose encoding is
unknown), deliberately on the high side. It splits text roughly as OpenAI's encodings do
and counts: a word of ASCII letters ``ceil(len / 4)`` (``ceil(2 * len / 3)`` when its case
is mixed inside, as in keys and base64), a run of digits ``ceil(len / 3)``, every other
ASCII symbol 1, a single space before a word or symbol 0, any other run of whitespace 1
(2 when longer than one character), and every non-ASCII character its UTF-8 length minus 1
(Latin accents, Cyrillic, Greek, Hebrew, Arabic: 1; Indic, Thai, CJK: 2; emoji: 3).
Measured against cl100k_base and o200k_base: 1.0 to 1.5 times the true count for English and
other Latin-script text, up to about 2 times for other scripts (o200k, the newer one, is the
more frugal), and 0.7 to 1 times for random strings (hex, base64), which the per-message slack
below covers when they are short.

Messages add what OpenAI documents for its chat models (the exact count uses the same): 3
tokens per message plus its role, 1 more per ``name``, and 3 that prime the reply; the
estimate counts the role as 1 token and adds 1 token of slack per message. A window sized
by the estimate is shorter than it needs to be, rarely longer.
"""

import asyncio
import base64
import gzip
import hashlib
import importlib.util
import json
import math
import os
import re
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TOKENS_PER_MESSAGE = 3
"""Per message, besides its role and content (OpenAI's chat models)."""
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3
"""Every reply is primed with ``<|start|>assistant<|message|>``."""
ESTIMATE_SLACK_PER_MESSAGE = 1
"""Added by the estimate: the role's token is counted as 1, and a short random string may
come out a little under."""

_BLOB = "https://openaipublic.blob.core.windows.net/encodings/"


@dataclass(frozen=True, slots=True)
class EncodingSpec:
    """What tiktoken needs besides the vocabulary (as in ``tiktoken_ext.openai_public``)."""

    name: str
    sha256: str
    """Of the vocabulary file (``.tiktoken``), as tiktoken checks it."""
    pat_str: str
    special_tokens: Mapping[str, int]

    @property
    def download_address(self) -> str:
        """Where tiktoken would fetch the file from: its cache file is named after it."""
        return f"{_BLOB}{self.name}.tiktoken"


ENCODINGS: Mapping[str, EncodingSpec] = {
    "cl100k_base": EncodingSpec(
        "cl100k_base",
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?"""
        r"""[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",
        {
            "<|endoftext|>": 100257,
            "<|fim_prefix|>": 100258,
            "<|fim_middle|>": 100259,
            "<|fim_suffix|>": 100260,
            "<|endofprompt|>": 100276,
        },
    ),
    "o200k_base": EncodingSpec(
        "o200k_base",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        "|".join(
            [
                r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
                r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
                r"""\p{N}{1,3}""",
                r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
                r"""\s*[\r\n]+""",
                r"""\s+(?!\S)""",
                r"""\s+""",
            ]
        ),
        {"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
    ),
}

# Longest prefix first: "gpt-4o" before "gpt-4".
_MODEL_PREFIXES: tuple[tuple[str, str], ...] = (
    ("gpt-5", "o200k_base"),
    ("gpt-4.1", "o200k_base"),
    ("gpt-4.5", "o200k_base"),
    ("gpt-4o", "o200k_base"),
    ("chatgpt-4o", "o200k_base"),
    ("o1", "o200k_base"),
    ("o3", "o200k_base"),
    ("o4", "o200k_base"),
    ("gpt-4", "cl100k_base"),
    ("gpt-3.5", "cl100k_base"),
    ("gpt-35", "cl100k_base"),
    ("text-embedding-3", "cl100k_base"),
    ("text-embedding-ada-002", "cl100k_base"),
)


def encoding_for(model: str) -> str | None:
    """The tiktoken encoding of an OpenAI model name, or None when it is not an OpenAI
    model acf knows (Llama, Mistral, Qwen… on vLLM or Ollama: their counts are estimated).

    A provider prefix (``openai/gpt-4o``) and a fine-tune (``ft:gpt-4o-mini:org::id``) name
    their base model. An Azure deployment is named by its owner: its count is estimated
    unless the deployment keeps the model's name.
    """
    name = model.strip().lower()
    if name.startswith("ft:"):
        name = name[3:]
    name = name.rsplit("/", 1)[-1]
    for prefix, encoding in _MODEL_PREFIXES:
        if name == prefix or name.startswith((f"{prefix}-", f"{prefix}.", f"{prefix}:")):
            return encoding
    return None


def vocabulary_files(encoding: str) -> tuple[Path, ...]:
    """Where the vocabulary of ``encoding`` may be on this machine, in the order tried."""
    spec = ENCODINGS.get(encoding)
    if spec is None:
        return ()
    files: list[Path] = []
    cache = os.environ.get("TIKTOKEN_CACHE_DIR", os.environ.get("DATA_GYM_CACHE_DIR"))
    if cache is None:
        cache = os.path.join(tempfile.gettempdir(), "data-gym-cache")
    if cache:
        files.append(Path(cache) / hashlib.sha1(spec.download_address.encode()).hexdigest())
    try:
        found = importlib.util.find_spec("bpe_openai")
    except (ImportError, ValueError):
        found = None
    for folder in (found.submodule_search_locations or []) if found else []:
        files.append(Path(folder) / "data" / f"{encoding}.tiktoken.gz")
    return tuple(files)


def _read_vocabulary(spec: EncodingSpec, files: Sequence[Path]) -> dict[bytes, int] | None:
    """The first of ``files`` that exists and has the expected hash, parsed."""
    for path in files:
        try:
            raw = path.read_bytes()
            data = gzip.decompress(raw) if path.name.endswith(".gz") else raw
        except (OSError, EOFError, gzip.BadGzipFile):
            continue
        if hashlib.sha256(data).hexdigest() != spec.sha256:
            continue
        ranks: dict[bytes, int] = {}
        for line in data.splitlines():
            if line:
                token, rank = line.split()
                ranks[base64.b64decode(token)] = int(rank)
        return ranks
    return None


Encode = Callable[[str], int]


def _load_exact(encoding: str, files: Sequence[Path]) -> Encode | None:
    spec = ENCODINGS.get(encoding)
    if spec is None:
        return None
    try:
        import tiktoken
    except ImportError:
        return None
    ranks = _read_vocabulary(spec, files)
    if ranks is None:
        return None
    bpe = tiktoken.Encoding(
        name=spec.name,
        pat_str=spec.pat_str,
        mergeable_ranks=ranks,
        special_tokens=dict(spec.special_tokens),
    )

    def count(text: str) -> int:
        # Special-token text in a message is counted as plain text, as the API bills it.
        return len(bpe.encode_ordinary(text))

    return count


_SYMBOL = r"\x21-\x2f\x3a-\x40\x5b-\x60\x7b-\x7e"
_CHUNK = re.compile(
    r"(?P<word>[A-Za-z]+)|(?P<digits>[0-9]+)|(?P<joined> (?=[A-Za-z" + _SYMBOL + r"]))"
    r"|(?P<space>\s+)|(?P<ascii>[\x00-\x7f])|(?P<other>.)",
    re.DOTALL,
)


def estimate_text(text: str) -> int:
    """The stated estimate of a text's tokens (see the module's docstring)."""
    total = 0
    for chunk in _CHUNK.finditer(text):
        part, kind = chunk.group(), chunk.lastgroup
        if kind == "word":
            plain = part.islower() or part.istitle() or (part.isupper() and len(part) <= 4)
            total += math.ceil(len(part) / 4) if plain else math.ceil(2 * len(part) / 3)
        elif kind == "digits":
            total += math.ceil(len(part) / 3)
        elif kind == "space":
            total += 1 if len(part) == 1 else 2
        elif kind == "ascii":
            total += 1
        elif kind == "other":
            total += len(part.encode()) - 1
    return total


@dataclass(frozen=True, slots=True)
class TokenCounter:
    """Counts tokens for one model: exactly when ``encoding`` is set, else the estimate."""

    encoding: str | None
    """The encoding counted with, or None: the estimate."""
    _count: Encode | None = None

    @property
    def exact(self) -> bool:
        return self._count is not None

    def text(self, text: str) -> int:
        if not text:
            return 0
        return self._count(text) if self._count is not None else estimate_text(text)

    def value(self, value: Any) -> int:
        """A message field: text as such, anything else (content parts, tool calls) as
        its compact JSON."""
        if isinstance(value, str):
            return self.text(value)
        if value is None:
            return 0
        return self.text(json.dumps(value, ensure_ascii=False, separators=(",", ":")))

    def message(self, message: Mapping[str, Any]) -> int:
        """One message without the reply priming."""
        total = TOKENS_PER_MESSAGE + (0 if self.exact else ESTIMATE_SLACK_PER_MESSAGE)
        for key, value in message.items():
            total += self.value(value)
            if key == "name":
                total += TOKENS_PER_NAME
        return total

    def messages(self, messages: Sequence[Mapping[str, Any]]) -> int:
        """A whole request's messages, reply priming included."""
        return sum(self.message(m) for m in messages) + REPLY_PRIMING


ESTIMATE = TokenCounter(None)

_loaded: dict[tuple[str, tuple[Path, ...]], TokenCounter] = {}
_loading = threading.Lock()


def _key(model: str, files: Sequence[Path] | None) -> tuple[str, tuple[Path, ...]] | None:
    encoding = encoding_for(model)
    if encoding is None:
        return None
    return encoding, tuple(files) if files is not None else vocabulary_files(encoding)


def counter_for(model: str, *, files: Sequence[Path] | None = None) -> TokenCounter:
    """The counter for ``model``: exact where possible, else ``ESTIMATE``. Loading an
    encoding reads and hashes its vocabulary once per process (a fraction of a second): on
    the event loop, call ``load_counter``. ``files``: where to look instead of
    ``vocabulary_files``."""
    key = _key(model, files)
    if key is None:
        return ESTIMATE
    with _loading:
        counter = _loaded.get(key)
        if counter is None:
            count = _load_exact(*key)
            counter = TokenCounter(key[0], count) if count is not None else ESTIMATE
            _loaded[key] = counter
    return counter


async def load_counter(model: str, *, files: Sequence[Path] | None = None) -> TokenCounter:
    """``counter_for`` without blocking the event loop: a first load runs in a thread."""
    key = _key(model, files)
    if key is None:
        return ESTIMATE
    loaded = _loaded.get(key)
    if loaded is not None:
        return loaded
    return await asyncio.to_thread(counter_for, model, files=files)
