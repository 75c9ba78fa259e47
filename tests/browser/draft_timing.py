"""When the web chat shows a draft: a helper for measurements (the benchmark reuses it), not
a test. ``RECORD_DRAFTS`` (a page init script) notes every text a draft bubble shows, with
the browser's wall-clock time; ``draft_latency_ms`` publishes a draft and says how long it
took to show. Both clocks are the machine's wall clock (the browser's at sub-millisecond
resolution), so run it with the browser on the machine that publishes."""

import time
from collections.abc import Callable
from typing import Any

from playwright.sync_api import Page

RECORD_DRAFTS = """
window.__draftsSeen = [];
document.addEventListener("DOMContentLoaded", () => {
  const list = document.getElementById("messages");
  if (!list) return;
  const note = () => {
    const at = performance.timeOrigin + performance.now();
    for (const li of list.querySelectorAll("li.draft")) {
      const text = li.querySelector(".text")?.textContent ?? "";
      const seen = window.__draftsSeen;
      const last = seen.findLast((d) => d.turn === li.dataset.turnId);
      if (!last || last.text !== text) seen.push({ at, turn: li.dataset.turnId, text });
    }
  };
  new MutationObserver(note).observe(list, { childList: true, subtree: true, characterData: true });
});
"""


def drafts_seen(page: Page, turn_id: str | None = None) -> list[dict[str, Any]]:
    """Every text a draft bubble showed (``at``: browser ms since the epoch, ``turn``,
    ``text``), oldest first; only ``turn_id``'s when given."""
    seen: list[dict[str, Any]] = page.evaluate("window.__draftsSeen")
    return [d for d in seen if turn_id is None or d["turn"] == turn_id]


def shown_at_ms(page: Page, marker: str, timeout_ms: float = 15_000) -> float:
    """Wait until a draft bubble shows ``marker``; when it first did (browser wall clock)."""
    page.wait_for_function(
        "m => window.__draftsSeen.some((d) => d.text.includes(m))", arg=marker, timeout=timeout_ms
    )
    at: float = page.evaluate("m => window.__draftsSeen.find((d) => d.text.includes(m)).at", marker)
    return at


def draft_latency_ms(page: Page, publish: Callable[[str], None], marker: str) -> float:
    """Milliseconds from ``publish(marker)`` (which publishes a draft whose text contains
    ``marker`` on the session the page follows) to the page showing it. The page must run
    ``RECORD_DRAFTS`` (``page.add_init_script``)."""
    before = time.time() * 1000
    publish(marker)
    return shown_at_ms(page, marker) - before
