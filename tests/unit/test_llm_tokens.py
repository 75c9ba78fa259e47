"""Token counts for the LLM pipeline's history: exact with tiktoken over a vocabulary found
on this machine, else the stated estimate, and never a download."""

import gzip
import hashlib
import importlib.util
import socket
import sys
from pathlib import Path
from typing import Any

import pytest

from acf.pipelines.llm import tokens
from acf.pipelines.llm.tokens import (
    ENCODINGS,
    ESTIMATE,
    counter_for,
    encoding_for,
    estimate_text,
    load_counter,
    vocabulary_files,
)

SAMPLES = [
    "Hi, I ordered a blue jacket last week (order R-1042) and it still hasn't arrived.",
    "Done: refund R-0001 of €20.00 issued to your Visa ending 4242. It takes 3–5 days.",  # noqa: RUF001
    "Bonjour, j'ai commandé une veste bleue et elle n'est toujours pas arrivée. Merci !",
    "Guten Tag, ich habe letzte Woche eine blaue Jacke bestellt. Können Sie das prüfen?",
    "Здравствуйте, я заказал синюю куртку, и она до сих пор не пришла.",
    "你好，我上周订购了一件蓝色夹克，到现在还没有到。你能帮我查一下物流吗？",  # noqa: RUF001
    "こんにちは、先週青いジャケットを注文しましたが、まだ届いていません。",
    "नमस्ते, मैंने पिछले हफ्ते एक नीली जैकेट ऑर्डर की थी।",
    "ok 👍👍 thanks!!! 🙏😊🎉",
    '{"order_id":"R-1042","status":"shipped","eta":"2024-06-03","items":[{"qty":1}]}',
    "1234567890 0987654321 3.14159 2024-06-03T10:32:00Z",
    "a\n\n\n   b\t\tc        d",
]


def packaged_vocabulary(encoding: str) -> Path | None:
    """The vocabulary shipped in the bpe-openai wheel, when it and tiktoken are installed."""
    if importlib.util.find_spec("tiktoken") is None:
        return None
    found = [f for f in vocabulary_files(encoding) if f.name.endswith(".gz") and f.exists()]
    return found[0] if found else None


needs_vocabulary = pytest.mark.skipif(
    packaged_vocabulary("o200k_base") is None,
    reason="tiktoken and bpe-openai (its wheel ships the vocabularies) are not installed",
)


@pytest.fixture(autouse=True)
def fresh_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty tiktoken cache of this test's own."""
    cache = tmp_path / "tiktoken-cache"
    cache.mkdir()
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(cache))
    return cache


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every connection attempt is recorded and refused, and so is tiktoken's download."""
    attempts: list[Any] = []

    def refuse(self: socket.socket, address: Any) -> None:
        attempts.append(address)
        raise OSError("network unreachable")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    try:
        import tiktoken.load
    except ImportError:
        return attempts

    def download(blobpath: str) -> bytes:
        attempts.append(blobpath)
        raise OSError("network unreachable")

    monkeypatch.setattr(tiktoken.load, "read_file", download)
    return attempts


def test_model_names_map_to_their_encodings() -> None:
    assert encoding_for("gpt-4o") == "o200k_base"
    assert encoding_for("gpt-4o-mini") == "o200k_base"
    assert encoding_for("gpt-4o-2024-08-06") == "o200k_base"
    assert encoding_for("openai/gpt-4o-mini") == "o200k_base"
    assert encoding_for("ft:gpt-4o-mini:acme::abc123") == "o200k_base"
    assert encoding_for("gpt-4.1-nano") == "o200k_base"
    assert encoding_for("o3-mini") == "o200k_base"
    assert encoding_for("GPT-5") == "o200k_base"
    assert encoding_for("gpt-4") == "cl100k_base"
    assert encoding_for("gpt-4-turbo") == "cl100k_base"
    assert encoding_for("gpt-3.5-turbo") == "cl100k_base"
    assert encoding_for("gpt-35-turbo") == "cl100k_base"  # Azure's spelling
    for other in ("llama3.1:8b", "mistral-small", "qwen2.5", "gpt-4ever", "o10", ""):
        assert encoding_for(other) is None
    assert counter_for("llama3.1:8b") is ESTIMATE


def test_the_estimate_is_the_stated_rule() -> None:
    assert estimate_text("") == 0
    assert estimate_text("hello") == 2  # ceil(5 / 4)
    assert estimate_text("hi there") == 1 + 2  # the space joins the word after it
    assert estimate_text("Hello, world!") == 2 + 1 + 2 + 1
    assert estimate_text("R-1042") == 1 + 1 + 2  # letters, symbol, digits by three
    assert estimate_text("xYzAbC") == 4  # mixed case: ceil(2 * 6 / 3)
    assert estimate_text("a\n\nb") == 1 + 2 + 1
    assert estimate_text("é") == 1 and estimate_text("你") == 2 and estimate_text("👍") == 3
    # A message: 3 + 1 of slack + the role + the content; then 3 that prime the reply.
    one = {"role": "user", "content": "hello"}
    assert ESTIMATE.message(one) == 3 + 1 + 1 + 2
    assert ESTIMATE.messages([one, one]) == 2 * 7 + 3
    assert (
        ESTIMATE.message({"role": "user", "content": "hi", "name": "bob"}) == 3 + 1 + 1 + 1 + 1 + 1
    )
    assert not ESTIMATE.exact and ESTIMATE.encoding is None


def test_offline_without_a_vocabulary_no_download_is_attempted(
    no_network: list[Any], fresh_cache: Path
) -> None:
    nowhere = [fresh_cache / "absent.tiktoken", fresh_cache / "absent.tiktoken.gz"]
    counter = counter_for("gpt-4o", files=nowhere)
    assert counter is ESTIMATE
    assert counter.text("hello world") == estimate_text("hello world")
    assert no_network == []


def test_tiktoken_would_look_in_its_cache_under_the_name_it_uses(fresh_cache: Path) -> None:
    spec = ENCODINGS["o200k_base"]
    expected = fresh_cache / hashlib.sha1(spec.download_address.encode()).hexdigest()
    assert vocabulary_files("o200k_base")[0] == expected
    assert vocabulary_files("unknown_base") == ()


def test_a_file_with_the_wrong_hash_is_not_used(no_network: list[Any], tmp_path: Path) -> None:
    forged = tmp_path / "o200k_base.tiktoken"
    forged.write_bytes(b"aGVsbG8= 0\nd29ybGQ= 1\n")
    assert counter_for("gpt-4o", files=[forged]) is ESTIMATE
    assert no_network == []


def test_without_tiktoken_installed_the_estimate_is_used(
    monkeypatch: pytest.MonkeyPatch, no_network: list[Any]
) -> None:
    monkeypatch.setattr(tokens, "_loaded", {})  # nothing loaded before
    monkeypatch.setitem(sys.modules, "tiktoken", None)  # its import fails
    found = packaged_vocabulary("o200k_base")
    counter = counter_for("gpt-4o", files=[found] if found else [])
    assert counter is ESTIMATE
    assert no_network == []


@needs_vocabulary
def test_exact_counts_match_tiktoken_offline(
    no_network: list[Any], fresh_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tiktoken

    for encoding, model in (("o200k_base", "gpt-4o-mini"), ("cl100k_base", "gpt-4")):
        packaged = packaged_vocabulary(encoding)
        assert packaged is not None
        # Seed tiktoken's cache as a download would have: its own loader then works offline.
        spec = ENCODINGS[encoding]
        cached = fresh_cache / hashlib.sha1(spec.download_address.encode()).hexdigest()
        cached.write_bytes(gzip.decompress(packaged.read_bytes()))
        official = tiktoken.get_encoding(encoding)

        from_package = counter_for(model, files=[packaged])
        assert from_package.exact and from_package.encoding == encoding
        for text in SAMPLES:
            assert from_package.text(text) == len(official.encode_ordinary(text))
        if encoding == "cl100k_base":  # the smaller one: the cache is read the same way
            from_cache = counter_for(model)  # the cache comes first
            assert from_cache.exact and from_cache.text(SAMPLES[0]) == from_package.text(SAMPLES[0])
        assert from_package.text("tiktoken is great!") == 6  # OpenAI's cookbook example
        # OpenAI's documented chat framing: 3 per message, 1 per name, 3 for the reply.
        chat = [
            {"role": "system", "content": SAMPLES[0]},
            {"role": "user", "name": "bob", "content": SAMPLES[2]},
        ]
        framed = sum(
            3 + sum(len(official.encode(v)) for v in m.values()) + ("name" in m) for m in chat
        )
        assert from_package.messages(chat) == framed + 3
    assert no_network == []


@needs_vocabulary
def test_the_estimate_does_not_undercount_language(no_network: list[Any]) -> None:
    exact = [counter_for("gpt-4"), counter_for("gpt-4o")]
    assert all(c.exact for c in exact)
    for text in SAMPLES:
        assert estimate_text(text) >= max(c.text(text) for c in exact), text
    chat = [{"role": "user", "content": text} for text in SAMPLES]
    assert ESTIMATE.messages(chat) >= max(c.messages(chat) for c in exact)


async def test_loading_on_the_event_loop_is_cached() -> None:
    first = await load_counter("gpt-4")
    assert await load_counter("gpt-4-turbo") is first
    assert await load_counter("mistral-small") is ESTIMATE
