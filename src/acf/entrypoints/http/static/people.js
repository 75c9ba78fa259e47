// What the inbox and the holds tabs share: refusals in words, times, operators' names, how
// the events of people in the loop (handoffs, operators, the abuse firewall) read on the
// timeline, the ledger's rows, and sending a reply with its Idempotency-Key.

import { el, sleep } from "./api.js";
import { categoryOf, range, summarize } from "./timeline.js";

/** What each of acf's refusal codes means to an operator, and what to do about it. */
const WORDS = {
  claimed: "Another operator holds this conversation: wait until they release it or their claim runs out.",
  not_claimed: "Claim the conversation first: only the operator holding it can do that.",
  not_human: "The agent answers this conversation now: hand it to a person first.",
  session_busy: "The agent is finishing a step in this conversation: try again in a few seconds.",
  closed: "The conversation is closed: the customer's next message opens a new one.",
  blocked: "The customer is on the block list: lift the block in the Holds tab first.",
  in_progress:
    "acf took your reply and is still sending it: press Send reply again to check (it is never sent twice).",
  not_found: "This tenant has no such conversation or block.",
  network: "acf cannot be reached: check the connection and try again.",
};

/**
 * An API refusal as a sentence for the operator: "Could not claim: …"; `own` words for some
 * codes win over the usual ones (what a code means depends on the action).
 */
export function explain(err, doing, own = {}) {
  let words;
  if (own[err.code]) words = own[err.code];
  else if (WORDS[err.code]) words = WORDS[err.code];
  else if (err.status === 403) words = `This key may not do that: ${err.message}`;
  else if (err.status === 422) words = `Check what you entered: ${err.message}`;
  else if (err.status === 429) {
    const wait = err.retryAfterS === null ? "a moment" : `${Math.ceil(err.retryAfterS)} s`;
    words = `Too many requests: try again in ${wait}.`;
  } else words = err.message;
  return doing ? `Could not ${doing}: ${words}` : words;
}

/** How many times a reply is sent again by itself, with its key, while acf asks to wait. */
export const REPLY_RETRIES = 5;
const MAX_RETRY_WAIT_S = 10;

/**
 * What becomes of a reply's Idempotency-Key after acf refused its `attempt`-th sending with
 * `err`:
 * - "retry": send the same request with the same key again after `retryWaitMs(err)`: a 409
 *   `in_progress` (acf committed the reply but has not stored its answer yet: a new key
 *   would send it twice), or any 409 with `Retry-After` (`session_busy`);
 * - "keep": the answer was lost (no connection, a 5xx) or the retries ran out: the
 *   operator's next send uses the key again, so the customer never gets the reply twice;
 * - "drop": a definitive refusal (422, 409 `not_claimed`, 403…): nothing was sent, the
 *   next send is a new request with a new key.
 */
export function replyKeyAfter(err, attempt) {
  const wait = err.status === 409 && (err.code === "in_progress" || err.retryAfterS != null);
  if (wait) return attempt <= REPLY_RETRIES ? "retry" : "keep";
  if (err.status >= 400 && err.status < 500) return "drop";
  return "keep";
}

/** How long to wait before sending again: acf's `Retry-After` (1 s without one), at most 10 s. */
export function retryWaitMs(err) {
  const seconds = err.retryAfterS ?? 1;
  return Math.round(Math.min(Math.max(seconds, 0.1), MAX_RETRY_WAIT_S) * 1000);
}

/**
 * Send an operator's reply (`body` to `path`) with the Idempotency-Key `key`, and again with
 * it while acf asks to wait (`replyKeyAfter`): `waiting(ms)` before each wait, which happens
 * only while `current()` (the operator still looks at that conversation). Its answer; else
 * the last refusal, with `keepKey`: whether the next send must use `key` again.
 */
export async function sendReply(api, path, body, key, { waiting = () => {}, current = () => true } = {}) {
  const keyed = withHeaders(api, { "Idempotency-Key": key });
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await keyed.post(path, body);
    } catch (err) {
      const next = replyKeyAfter(err, attempt);
      if (next === "retry" && current()) {
        const waitMs = retryWaitMs(err);
        waiting(waitMs);
        await sleep(waitMs);
        continue;
      }
      err.keepKey = next !== "drop";
      throw err;
    }
  }
}

/** "42 s", "3 min", "2 h 5 min", "3 d 4 h". */
export function duration(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "";
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 24) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
  const d = Math.floor(h / 24);
  return h % 24 ? `${d} d ${h % 24} h` : `${d} d`;
}

export function when(ms) {
  return ms ? new Date(ms).toLocaleString() : "";
}

export function clock(ms) {
  return ms ? new Date(ms).toLocaleTimeString() : "";
}

export function shortId(id) {
  return id ? String(id).slice(0, 8) : "";
}

const NAMES = new Map(); // operator key id -> name, from every `{key_id, name}` seen

/**
 * The operator a view names, as people read it: `{key_id, name}`, or a bare key id (a
 * block's `created_by`), shown by its name once the page has seen it.
 */
export function who(by) {
  if (!by) return "";
  if (typeof by === "string") return NAMES.get(by) ?? by;
  if (by.key_id && by.name) NAMES.set(by.key_id, by.name);
  return by.name || by.key_id || "";
}

function quoted(text, max = 120) {
  if (text === undefined || text === null || text === "") return "";
  const s = String(text);
  return `“${s.length > max ? s.slice(0, max - 1) + "…" : s}”`;
}

function byline(d) {
  const name = who(d.by);
  return name ? ` by ${name}` : "";
}

const PEOPLE_SUMMARIES = {
  "session.handed_off": (d) =>
    `handed to a person${d.source ? ` (${d.source})` : ""}${byline(d)}${d.reason ? `: ${d.reason}` : ""}`,
  "session.resumed": (d) => `the agent answers again${byline(d)}${d.note ? `; note ${quoted(d.note)}` : ""}`,
  "handoff.claimed": (d) => `claimed${byline(d)}`,
  "handoff.released": (d) => `released${byline(d)}${d.note ? `; note ${quoted(d.note)}` : ""}`,
  "handoff.sla_breached": (d) => `waited past the SLA${d.waited_ms ? ` (${duration(d.waited_ms)})` : ""}`,
  "handoff.still_waiting": () => "the customer was told they are still waiting",
  "operator.replied": (d) =>
    `operator reply${byline(d)}${d.text ? ` ${quoted(d.text)}` : ""}` +
    (d.to_seq !== undefined && d.from_seq !== undefined ? ` answering ${range(d.from_seq, d.to_seq)}` : ""),
  "operator.note_added": (d) => `internal note${byline(d)}${d.text ? ` ${quoted(d.text)}` : ""}`,
  "abuse.suspected": (d) => `${d.detector ?? "detector"} fired${d.detail ? `: ${d.detail}` : ""}`,
  "abuse.cooldown_started": (d) =>
    `cool-down${d.until_ms ? ` until ${clock(d.until_ms)}` : ""}${d.detector ? ` (${d.detector})` : ""}`,
  "abuse.cooldown_ended": () => "cool-down ended: the agent answers the held messages",
  "abuse.messages_dropped": (d) => `${range(d.from_seq, d.to_seq)} dropped unanswered: the customer is blocked`,
  "customer.blocked": (d) => `customer blocked${byline(d)}${d.reason ? `: ${d.reason}` : ""}`,
  "customer.unblocked": (d) => `customer unblocked${byline(d)}`,
  "rate.exceeded": () => "over the tenant's rate: stored and acknowledged anyway",
};

/** The timeline's category of an event: people's own, or timeline.js's. */
export function eventCategory(kind) {
  const family = kind.split(".")[0];
  if (["session", "handoff", "operator"].includes(family) && kind !== "session.flagged") {
    if (kind in PEOPLE_SUMMARIES) return "people";
  }
  if (family === "abuse" || family === "customer" || family === "rate") return "failures";
  return categoryOf(kind);
}

/** One line about an event (`ctx.textOf(message_id)` gives a message's text if known). */
export function eventSummary(event, ctx) {
  const make = PEOPLE_SUMMARIES[event.kind];
  if (!make) return summarize(event, ctx);
  try {
    return make(event.data ?? {});
  } catch {
    return summarize({ ...event, kind: "" }, ctx);
  }
}

/**
 * `api` sending `extra` headers too (an Idempotency-Key): api.js builds every request's
 * headers through `api.headers()`.
 */
export function withHeaders(api, extra) {
  const once = Object.create(api);
  once.headers = (more = {}) => api.headers({ ...more, ...extra });
  return once;
}

/** One execution of the session's tool ledger as a table row. */
export function ledgerRow(e) {
  const args = Object.entries(e.args ?? {})
    .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join(", ");
  const result = e.error ? el("span", { className: "error-text" }, e.error) : JSON.stringify(e.result ?? "");
  return el(
    "tr",
    { dataset: { executionId: e.execution_id, status: e.status } },
    el("td", {}, e.tool),
    el("td", {}, el("span", { className: `status-${e.status}` }, e.status)),
    el("td", {}, e.policy),
    el("td", { className: "args" }, el("code", {}, args)),
    el("td", { className: "result" }, result),
    el("td", {}, clock(e.started_at_ms)),
  );
}

/** One reply of the outbox: who wrote it (`author`: agent, operator, system), its text and
 * buttons, its delivery status. */
export function outboxItem(r, operatorName) {
  const name = operatorName || r.operator?.name || "";
  const label = { operator: "Operator", system: "Notice", agent: "Agent" }[r.author] ?? r.author;
  const buttons = (r.buttons ?? []).map((b) => `[${b.title ?? b}]`).join(" ");
  return el(
    "li",
    { className: `from-${r.author}`, dataset: { author: r.author, status: r.status, outboxId: r.outbox_id } },
    el("span", { className: "author" }, name ? `${label} (${name})` : label),
    el("span", { className: "text" }, r.text, buttons ? ` ${buttons}` : ""),
    el("span", { className: `badge reply-${r.status}` }, r.status),
    el("time", { dateTime: new Date(r.created_at_ms).toISOString() }, clock(r.created_at_ms)),
  );
}
