// Server-sent events over fetch(): EventSource cannot send an Authorization header.
//
// `SseParser` turns text chunks (split anywhere, even inside a line or a CRLF) into
// messages; `openEventStream` reads a stream, parses each message's JSON and reconnects
// with Last-Event-ID after an error or a close, with a growing backoff; given a list URL,
// it polls that instead while the stream cannot be held.

export class SseParser {
  constructor() {
    this.buffer = "";
    this.lastEventId = "";
    this.retryMs = null;
    this.comments = 0;
    this.startEvent();
  }

  startEvent() {
    this.dataLines = [];
    this.eventType = "";
  }

  /** Feed a chunk of text; returns the messages it completed: `{id, event, data}`. */
  push(text) {
    this.buffer += text;
    const messages = [];
    let start = 0;
    for (;;) {
      const cr = this.buffer.indexOf("\r", start);
      const lf = this.buffer.indexOf("\n", start);
      if (cr === -1 && lf === -1) break;
      const end = cr === -1 ? lf : lf === -1 ? cr : Math.min(cr, lf);
      if (end === cr && cr === this.buffer.length - 1) break; // a CR whose LF may follow
      const line = this.buffer.slice(start, end);
      start = end + (end === cr && this.buffer[cr + 1] === "\n" ? 2 : 1);
      const message = this.line(line);
      if (message) messages.push(message);
    }
    this.buffer = this.buffer.slice(start);
    return messages;
  }

  line(line) {
    if (line === "") {
      const hasData = this.dataLines.length > 0;
      const message = hasData
        ? { id: this.lastEventId, event: this.eventType || "message", data: this.dataLines.join("\n") }
        : null;
      this.startEvent();
      return message;
    }
    if (line.startsWith(":")) {
      this.comments += 1; // a heartbeat
      return null;
    }
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") this.dataLines.push(value);
    else if (field === "event") this.eventType = value;
    else if (field === "id" && !value.includes("\0")) this.lastEventId = value;
    else if (field === "retry" && /^\d+$/.test(value)) this.retryMs = Number(value);
    return null;
  }
}

const MIN_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 15000;
const STALL_MS = 45000; // three missed heartbeats: the connection is dead, reconnect
const PERMANENT = new Set([400, 403, 404, 410, 422]); // answers a reconnect would get again
const FAILURES_BEFORE_POLLING = 3; // streams in a row that did not hold
const POLL_LIMIT = 500;
const FALLBACK_TIMING = {
  holdMs: 10000, // a stream holds once data (a heartbeat at least) comes this long after it opened
  pollMs: 1500,
  streamRetryMs: 30000, // while polling, the stream is tried again this often
};

/** Whether event id `id` comes after `lastId` (ids are decimal integers, up to 2^62). */
function isNewer(id, lastId) {
  if (!lastId) return true;
  try {
    return BigInt(id) > BigInt(lastId);
  } catch {
    return true; // not one of acf's ids: nothing to compare it with
  }
}

/**
 * Read `url` as an event stream until `close()`.
 *
 * - `onEvent(event)`: each message's data parsed as JSON (acf's event: event_id, kind, ...),
 *   in id order, each stored event once (one whose id is not above the last one is dropped).
 * - `onStatus(status, detail)`: "connecting", "open", "reconnecting" (detail: the error
 *   and the delay), "polling", "unauthorized" or "failed" (detail: the HTTP status; the
 *   stream stops). Nothing is reported after `close()`.
 * - `pollUrl`: where the same events can be listed (`GET ...?after_id=N&limit=M`, answering
 *   `{items: [...]}`). With it, when the stream cannot be held (FAILURES_BEFORE_POLLING
 *   attempts in a row failed, or ended before data came `holdMs` after they opened, as
 *   behind a proxy that cuts or buffers streams), the events are polled every `pollMs`
 *   instead ("polling"), and the stream is tried again every `streamRetryMs`; once one
 *   holds, polling stops ("open"). Only the drafts (never stored) are missed meanwhile.
 * - `timing`: overrides of FALLBACK_TIMING (`holdMs`, `pollMs`, `streamRetryMs`).
 */
export function openEventStream({
  url,
  key,
  afterId = 0,
  onEvent,
  onStatus = () => {},
  pollUrl = null,
  timing = {},
}) {
  const { holdMs, pollMs, streamRetryMs } = { ...FALLBACK_TIMING, ...timing };
  let lastId = afterId ? String(afterId) : "";
  let stopped = false;
  let controller = null;
  let backoff = MIN_BACKOFF_MS;
  let failures = 0; // stream attempts in a row that did not hold
  let held = false; // the current attempt held
  let polling = false;
  let pollController = null;
  const headers = () => ({ Authorization: `Bearer ${key}` });
  const report = (status, detail) => {
    if (!stopped) onStatus(status, detail); // after close() the caller no longer listens
  };

  // A stored event carries its id (`event_id`, also its SSE id); a draft has none (an SSE
  // message without an id line repeats the previous one, so that id cannot tell).
  function deliver(event) {
    const id = event?.event_id;
    if (id !== undefined && id !== null) {
      if (!isNewer(String(id), lastId)) return; // already had it (polled, or replayed)
      lastId = String(id);
    }
    try {
      onEvent(event);
    } catch (err) {
      console.error("acf: handling an event failed", err);
    }
  }

  function halt(status, detail) {
    report(status, detail); // retrying would not help
    stopped = true;
    controller?.abort();
    pollController?.abort();
  }

  async function readOnce() {
    controller = new AbortController();
    held = false;
    const request = { ...headers(), Accept: "text/event-stream" };
    if (lastId) request["Last-Event-ID"] = lastId;
    const response = await fetch(url, { headers: request, signal: controller.signal, cache: "no-store" });
    if (response.status === 401) return { stop: "unauthorized" };
    if (PERMANENT.has(response.status)) return { stop: "failed", status: response.status };
    if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
    const openedAt = Date.now();
    if (!polling) report("open");
    const parser = new SseParser();
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let stall = setTimeout(() => controller.abort(), STALL_MS);
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return "ended";
        clearTimeout(stall);
        stall = setTimeout(() => controller.abort(), STALL_MS);
        if (!held && Date.now() - openedAt >= holdMs) {
          held = true; // something still flows: the stream holds
          failures = 0;
          if (polling) {
            polling = false;
            pollController?.abort();
            report("open");
          }
        }
        backoff = MIN_BACKOFF_MS; // data flows: the next failure starts the backoff again
        if (parser.retryMs !== null) backoff = Math.max(parser.retryMs, MIN_BACKOFF_MS);
        for (const message of parser.push(value)) {
          let event;
          try {
            event = JSON.parse(message.data);
          } catch {
            if (message.id && isNewer(message.id, lastId)) lastId = message.id;
            continue; // not one of acf's events
          }
          deliver(event);
          if (stopped) return "closed";
        }
      }
    } finally {
      clearTimeout(stall);
      reader.cancel().catch(() => {});
    }
  }

  async function run() {
    while (!stopped) {
      if (!polling) report("connecting");
      let outcome;
      let error = null;
      try {
        outcome = await readOnce();
      } catch (err) {
        outcome = "error";
        error = err;
      }
      if (stopped) break;
      if (outcome?.stop) {
        halt(outcome.stop, { status: outcome.status });
        return;
      }
      failures = held ? 0 : failures + 1;
      if (pollUrl && failures >= FAILURES_BEFORE_POLLING) {
        if (!polling) startPolling();
        await sleep(streamRetryMs);
        continue;
      }
      const delay = Math.round(backoff * (0.75 + Math.random() * 0.5));
      report("reconnecting", { error, delayMs: delay });
      await sleep(delay);
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    }
  }

  function startPolling() {
    polling = true;
    report("polling");
    (async () => {
      while (polling && !stopped) {
        let more = false;
        try {
          more = await pollOnce();
        } catch {
          // unreachable for now, or the poll was stopped: the next tick tries again
        }
        if (!more && polling && !stopped) await sleep(pollMs);
      }
    })();
  }

  /** One page of events after the last one; true when there may be more right away. */
  async function pollOnce() {
    pollController = new AbortController();
    const query = `after_id=${encodeURIComponent(lastId || "0")}&limit=${POLL_LIMIT}`;
    const address = `${pollUrl}${pollUrl.includes("?") ? "&" : "?"}${query}`;
    const response = await fetch(address, {
      headers: { ...headers(), Accept: "application/json" },
      signal: pollController.signal,
      cache: "no-store",
    });
    if (response.status === 401) {
      halt("unauthorized", {});
      return false;
    }
    if (PERMANENT.has(response.status)) {
      halt("failed", { status: response.status });
      return false;
    }
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const body = await response.json();
    const items = Array.isArray(body?.items) ? body.items : [];
    for (const event of items) {
      if (!polling || stopped) return false; // the stream holds again, or close()
      deliver(event);
    }
    return items.length >= POLL_LIMIT;
  }

  run();
  return {
    close() {
      stopped = true;
      polling = false;
      controller?.abort();
      pollController?.abort();
    },
    get lastEventId() {
      return lastId;
    },
    get polling() {
      return polling;
    },
  };
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Show a stream's status in `node`; `openLabel` is what an open stream is called. */
export function showStreamStatus(node, status, detail, openLabel) {
  const labels = {
    connecting: "connecting…",
    open: openLabel,
    reconnecting: `reconnecting in ${Math.round((detail?.delayMs ?? 0) / 100) / 10} s…`,
    polling: openLabel, // the events come by polling: the same to the reader, only slower
    unauthorized: "key refused",
    failed: `stream refused (HTTP ${detail?.status})`,
  };
  node.dataset.state = status;
  node.textContent = labels[status] ?? status;
}
