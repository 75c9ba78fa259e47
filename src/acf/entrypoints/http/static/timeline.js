// How the console shows one event: its category (colour) and a one-line summary.

export const CATEGORIES = [
  { id: "messages", label: "Messages" },
  { id: "windows", label: "Windows" },
  { id: "turns", label: "Turns" },
  { id: "supersedes", label: "Supersedes" },
  { id: "tools", label: "Tools" },
  { id: "failures", label: "Failures" },
  { id: "deliveries", label: "Deliveries" },
];

const FAILURES = new Set([
  "turn.attempt_failed",
  "turn.failed",
  "tool.refused",
  "tool.execution_failed",
  "tool.in_doubt",
  "response.failed",
  "lease.lost",
  "session.flagged",
]);

export function categoryOf(kind) {
  if (FAILURES.has(kind)) return "failures";
  if (kind === "turn.superseded" || kind === "turn.absorbed" || kind === "turn.force_completed") {
    return "supersedes";
  }
  const family = kind.split(".")[0];
  return (
    {
      message: "messages",
      typing: "messages",
      window: "windows",
      turn: "turns",
      tool: "tools",
      confirmation: "tools",
      response: "deliveries",
    }[family] ?? "turns"
  );
}

/** Messages `(from_seq, to_seq]` as people count them: "#2–#4", "#3". */
export function range(fromSeq, toSeq) {
  if (fromSeq === undefined || toSeq === undefined) return "";
  if (toSeq <= fromSeq) return "no messages";
  return toSeq === fromSeq + 1 ? `#${toSeq}` : `#${fromSeq + 1}–#${toSeq}`;
}

function quoted(text, max = 120) {
  if (text === undefined || text === null) return "";
  const s = String(text);
  return `“${s.length > max ? s.slice(0, max - 1) + "…" : s}”`;
}

function closesIn(closeAtMs, atMs) {
  const wait = closeAtMs - atMs;
  return Number.isFinite(wait) && wait > 0 ? `closes in ${wait} ms` : "closes at once";
}

function ms(value) {
  return value === undefined || value === null ? "" : `${value} ms`;
}

function generic(data) {
  return Object.entries(data)
    .filter(([, v]) => v !== null && v !== undefined && typeof v !== "object")
    .map(([k, v]) => `${k}=${v}`)
    .join(" · ");
}

const SUMMARIES = {
  "message.received": (d, e, ctx) =>
    `${d.seq !== undefined ? `#${d.seq} ` : ""}${quoted(ctx.textOf(d.message_id) ?? "")}`,
  "message.duplicate": (d) => `#${d.seq} delivered again (${d.provider_message_id})`,
  "typing.started": () => "customer is typing",
  "typing.stopped": () => "customer stopped typing",
  "window.opened": (d, e) =>
    `from #${d.from_seq + 1}, ${closesIn(d.close_at_ms, e.at_ms)}${d.reason ? ` (${d.reason})` : ""}`,
  "window.extended": (d, e) =>
    `${closesIn(d.close_at_ms, e.at_ms)}${d.reason ? ` (${d.reason})` : ""}`,
  "window.closed": (d) =>
    `${range(d.from_seq, d.to_seq)} after ${ms(d.waited_ms)}${d.reason ? ` (${d.reason})` : ""}`,
  "turn.started": (d) => `${range(d.from_seq, d.to_seq)}, attempt ${d.attempt}`,
  "turn.progress": (d) => generic(d),
  "turn.attempt_failed": (d) => `attempt ${d.attempt}: ${d.error}`,
  "turn.irreversible_started": (d) => `irreversible gate passed${d.forced ? ` (forced: ${d.forced})` : ""}`,
  "turn.force_completed": (d) => `forced past newer messages: ${d.reason}`,
  "turn.superseded": (d) =>
    `${range(d.from_seq, d.to_seq)} superseded after ${ms(d.run_ms)} (${d.reason}); ` +
    `restarts over ${range(d.from_seq, d.last_seq)}`,
  "turn.absorbed": (d) => `took in ${range(d.from_seq, d.to_seq)}`,
  "turn.held": (d) => `reply ready, held while the customer types (at most ${ms(d.cap_ms)})`,
  "turn.hold_ended": (d) => `hold ended (${d.ended}) after ${ms(d.held_ms)}`,
  "turn.committed": (d) =>
    `${range(d.from_seq, d.to_seq)} → ${d.replies} repl${d.replies === 1 ? "y" : "ies"}, ` +
    `ran ${ms(d.run_ms)}, answered after ${ms(d.latency_ms)}`,
  "turn.failed": (d) => `${range(d.from_seq, d.to_seq)} failed after ${d.attempts} attempts: ${d.error}`,
  "response.queued": (d) => `segment ${d.position + 1}: ${quoted(d.text)}`,
  "response.delivered": (d) => {
    const buttons = (d.buttons ?? []).map((b) => `[${b.title}]`).join(" ");
    return `segment ${d.position + 1}: ${quoted(d.text)}${buttons ? ` ${buttons}` : ""}`;
  },
  "response.status": (d) => generic(d),
  "response.failed": (d) => `segment ${d.position + 1}: ${d.error ?? "failed"}`,
  "reply.cut": (d) =>
    `${d.outbox_ids.length} unsent part(s) cut: the customer wrote again (message ${d.newer_seq})`,
  "tool.refused": (d) => `${d.tool}: ${d.reason}`,
  "tool.execution_started": (d) => `${d.tool} (${d.policy})${d.status_text ? ` — ${d.status_text}` : ""}`,
  "tool.execution_completed": (d) => `${d.tool} succeeded in ${ms(d.duration_ms)}`,
  "tool.execution_failed": (d) => `${d.tool} failed after ${ms(d.duration_ms)}: ${d.error}`,
  "tool.side_effect_completed": (d) => `${d.tool}: side effect done`,
  "tool.in_doubt": (d) => `${d.tool}: outcome unknown, a person must check`,
  "tool.compensated": (d) => `${d.tool}: undone`,
  "confirmation.requested": (d) => `asks to confirm ${d.tool}`,
  "confirmation.resolved": (d) => `${d.tool}: ${d.answer}${d.outcome ? ` → ${d.outcome}` : ""}`,
  "confirmation.expired": (d) => `${d.tool}: expired, nothing ran`,
  "lease.lost": (d) => `lease lost (fence ${d.fence})`,
  "session.flagged": (d) => `flagged for a person: ${d.reason}`,
};

/** One line about the event; `ctx.textOf(message_id)` gives a message's text if known. */
export function summarize(event, ctx) {
  const data = event.data ?? {};
  const make = SUMMARIES[event.kind];
  try {
    return make ? make(data, event, ctx) : generic(data);
  } catch {
    return generic(data);
  }
}

/** "+1.234 s" (or "+2:05.300") after the first event. */
export function relativeTime(atMs, originMs) {
  const delta = Math.max(0, atMs - originMs);
  if (delta < 60000) return `+${(delta / 1000).toFixed(3)} s`;
  const minutes = Math.floor(delta / 60000);
  const seconds = ((delta % 60000) / 1000).toFixed(3).padStart(6, "0");
  return `+${minutes}:${seconds}`;
}
