// Server-sent events over fetch(): EventSource cannot send an Authorization header.
//
// `SseParser` turns text chunks (split anywhere, even inside a line or a CRLF) into
// messages; `openEventStream` reads a stream, parses each message's JSON and reconnects
// with Last-Event-ID after an error or a close, with a growing backoff.

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

/**
 * Read `url` as an event stream until `close()`.
 *
 * - `onEvent(event)`: each message's data parsed as JSON (acf's event: event_id, kind, ...).
 * - `onStatus(status, detail)`: "connecting", "open", "reconnecting" (detail: the error
 *   and the delay), "unauthorized" or "failed" (detail: the HTTP status; the stream
 *   stops). Nothing is reported after `close()`.
 */
export function openEventStream({ url, key, afterId = 0, onEvent, onStatus = () => {} }) {
  let lastId = afterId ? String(afterId) : "";
  let stopped = false;
  let controller = null;
  let backoff = MIN_BACKOFF_MS;
  const report = (status, detail) => {
    if (!stopped) onStatus(status, detail); // after close() the caller no longer listens
  };

  async function readOnce() {
    controller = new AbortController();
    const headers = { Authorization: `Bearer ${key}`, Accept: "text/event-stream" };
    if (lastId) headers["Last-Event-ID"] = lastId;
    const response = await fetch(url, { headers, signal: controller.signal, cache: "no-store" });
    if (response.status === 401) return { stop: "unauthorized" };
    if (PERMANENT.has(response.status)) return { stop: "failed", status: response.status };
    if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
    report("open");
    const parser = new SseParser();
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let stall = setTimeout(() => controller.abort(), STALL_MS);
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return "ended";
        clearTimeout(stall);
        stall = setTimeout(() => controller.abort(), STALL_MS);
        backoff = MIN_BACKOFF_MS; // data flows: the next failure starts the backoff again
        if (parser.retryMs !== null) backoff = Math.max(parser.retryMs, MIN_BACKOFF_MS);
        for (const message of parser.push(value)) {
          if (message.id) lastId = message.id;
          let event;
          try {
            event = JSON.parse(message.data);
          } catch {
            continue; // not one of acf's events
          }
          try {
            onEvent(event, message);
          } catch (err) {
            console.error("acf: handling an event failed", err);
          }
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
      report("connecting");
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
        report(outcome.stop, { status: outcome.status }); // retrying would not help
        return;
      }
      const delay = Math.round(backoff * (0.75 + Math.random() * 0.5));
      report("reconnecting", { error, delayMs: delay });
      await new Promise((resolve) => setTimeout(resolve, delay));
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    }
  }

  run();
  return {
    close() {
      stopped = true;
      controller?.abort();
    },
    get lastEventId() {
      return lastId;
    },
  };
}

/** Show a stream's status in `node`; `openLabel` is what an open stream is called. */
export function showStreamStatus(node, status, detail, openLabel) {
  const labels = {
    connecting: "connecting…",
    open: openLabel,
    reconnecting: `reconnecting in ${Math.round((detail?.delayMs ?? 0) / 100) / 10} s…`,
    unauthorized: "key refused",
    failed: `stream refused (HTTP ${detail?.status})`,
  };
  node.dataset.state = status;
  node.textContent = labels[status] ?? status;
}
