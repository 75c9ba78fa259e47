// The console: a tenant's sessions and dead letters; for one session its live timeline and
// its ledger.
//
// The session and dead-letter lists are read every few seconds (a dead letter's Replay
// runs it again, once, as a turn of its session); the chosen session's events come from its
// event stream (replayed from the start, then live), and its ledger is read again whenever
// a tool or confirmation event arrives.

import { Api, askForKey, currentKey, el, forgetKey } from "./api.js";
import { openEventStream, showStreamStatus } from "./sse.js";
import { CATEGORIES, categoryOf, relativeTime, summarize } from "./timeline.js";

const SESSIONS_REFRESH_MS = 3000;
const FOLLOW_UP_DELAY_MS = 250; // coalesce bursts of events into one ledger / facts read

const $ = (id) => document.getElementById(id);
const ui = {
  keyForm: $("key-form"),
  main: $("console"),
  connection: $("connection"),
  flaggedOnly: $("flagged-only"),
  statusFilter: $("status-filter"),
  refresh: $("refresh-sessions"),
  sessionsNote: $("sessions-note"),
  sessions: $("sessions"),
  deadNote: $("dead-letters-note"),
  deadLetters: $("dead-letters"),
  sessionTitle: $("session-title"),
  sessionView: $("session-view"),
  facts: $("session-facts"),
  legend: $("legend"),
  timeline: $("timeline"),
  ledgerRows: $("ledger-rows"),
  ledgerEmpty: $("ledger-empty"),
};

const view = {
  api: null,
  listSignature: "",
  deadSignature: "",
  deadNoteFromList: true, // the note says how the list loaded (not what a replay did)
  selected: null, // session id
  stream: null,
  seenEvents: new Set(),
  originMs: null,
  texts: new Map(), // message id -> text
  hidden: new Set(), // categories not shown
  pending: new Map(), // follow-up name -> timer
};

// ---------- start ----------

function start(key) {
  view.api = new Api(key, keyRefused);
  ui.main.hidden = false;
  buildLegend();
  ui.flaggedOnly.addEventListener("change", () => loadSessions());
  ui.statusFilter.addEventListener("change", () => loadSessions());
  ui.refresh.addEventListener("click", () => loadSessions());
  loadSessions();
  loadDeadLetters();
  setInterval(() => {
    if (document.hidden) return;
    loadSessions();
    loadDeadLetters();
  }, SESSIONS_REFRESH_MS);
  const fromHash = new URLSearchParams(window.location.hash.slice(1)).get("session");
  if (fromHash) select(fromHash);
}

function keyRefused() {
  forgetKey();
  view.stream?.close();
  ui.main.hidden = true;
  askForKey(ui.keyForm, "acf refused the key (unknown or revoked). Enter another one.", () =>
    window.location.reload(),
  );
}

function shortId(id) {
  return id ? String(id).slice(0, 8) : "";
}

function clock(ms) {
  return ms ? new Date(ms).toLocaleTimeString() : "";
}

function json(value) {
  return value === undefined || value === null ? "" : JSON.stringify(value);
}

// ---------- sessions ----------

async function loadSessions() {
  let items;
  try {
    ({ items } = await view.api.get("/v1/sessions", {
      flagged: ui.flaggedOnly.checked ? "true" : undefined,
      status: ui.statusFilter.value || undefined,
      limit: 100,
    }));
  } catch (err) {
    ui.sessionsNote.textContent = `Could not load sessions: ${err.message}`;
    return;
  }
  const signature = JSON.stringify([items, view.selected]);
  if (signature === view.listSignature) return; // nothing changed: keep focus and scroll
  view.listSignature = signature;
  ui.sessionsNote.textContent = items.length ? "" : "No sessions yet.";
  const focused = document.activeElement?.dataset?.sessionId;
  ui.sessions.replaceChildren(...items.map(sessionItem));
  if (focused) ui.sessions.querySelector(`[data-session-id="${CSS.escape(focused)}"]`)?.focus();
}

function sessionItem(s) {
  const button = el(
    "button",
    {
      type: "button",
      dataset: { sessionId: s.session_id },
      "aria-current": s.session_id === view.selected ? "true" : "false",
      onclick: () => select(s.session_id),
    },
    el("span", { className: "who" }, s.customer),
    el(
      "span",
      { className: "facts" },
      el("span", { className: `badge status-${s.status}` }, s.status),
      " ",
      s.flagged ? el("span", { className: "badge flagged", title: s.flag_reason ?? "" }, "flagged") : null,
      s.flagged ? " " : null,
      `${s.agent} · ${s.channel} · ${s.last_seq} message${s.last_seq === 1 ? "" : "s"}`,
      ` · ${clock(s.updated_at_ms)}`,
    ),
  );
  return el("li", {}, button);
}

// ---------- dead letters ----------

function noteDeadLetters(text, fromList) {
  ui.deadNote.textContent = text;
  view.deadNoteFromList = fromList;
}

async function loadDeadLetters() {
  let items;
  try {
    ({ items } = await view.api.get("/v1/dead-letters", { limit: 50 }));
  } catch (err) {
    noteDeadLetters(`Could not load dead letters: ${err.message}`, true);
    return;
  }
  if (!items.length) noteDeadLetters("No dead letters.", true);
  else if (view.deadNoteFromList) noteDeadLetters("", true); // a replay's note stays
  const signature = JSON.stringify(items);
  if (signature === view.deadSignature) return; // nothing changed: keep focus
  view.deadSignature = signature;
  ui.deadLetters.replaceChildren(...items.map(deadLetterItem));
}

function deadLetterItem(d) {
  let state = "";
  if (d.replayed_at_ms) state = ` · replayed in turn ${shortId(d.replay_turn_id)}`;
  else if (d.replay_requested_at_ms) state = " · replay requested";
  const replay = el(
    "button",
    {
      type: "button",
      className: "primary",
      disabled: d.replay_requested_at_ms !== null,
      "aria-label": `Replay dead letter ${shortId(d.dead_letter_id)}`,
    },
    "Replay",
  );
  replay.addEventListener("click", () => replayLetter(d, replay));
  const open = el(
    "button",
    { type: "button", title: `Open session ${d.session_id}`, onclick: () => select(d.session_id) },
    el("span", { className: "who" }, d.error),
    el(
      "span",
      { className: "facts" },
      `${d.pipeline} · ${d.attempts} attempt${d.attempts === 1 ? "" : "s"}`,
      ` · ${clock(d.created_at_ms)}${state}`,
    ),
  );
  return el("li", { dataset: { deadLetterId: d.dead_letter_id } }, open, replay);
}

async function replayLetter(d, button) {
  button.disabled = true;
  try {
    await view.api.post(`/v1/dead-letters/${encodeURIComponent(d.dead_letter_id)}/replay`);
    noteDeadLetters(`Replay of ${shortId(d.dead_letter_id)} requested.`, false);
  } catch (err) {
    noteDeadLetters(`Could not replay: ${err.message}`, false);
    if (err.status !== 409) button.disabled = false;
  }
  loadDeadLetters();
}

// ---------- one session ----------

function select(sessionId) {
  if (sessionId === view.selected) return;
  view.stream?.close();
  view.selected = sessionId;
  view.seenEvents = new Set();
  view.originMs = null;
  view.texts = new Map();
  for (const timer of view.pending.values()) clearTimeout(timer);
  view.pending.clear();
  window.history.replaceState(window.history.state, "", `#session=${encodeURIComponent(sessionId)}`);
  for (const button of ui.sessions.querySelectorAll("button[data-session-id]")) {
    button.setAttribute("aria-current", button.dataset.sessionId === sessionId ? "true" : "false");
  }
  view.listSignature = "";
  ui.sessionTitle.textContent = `Session ${shortId(sessionId)}`;
  ui.sessionView.hidden = false;
  ui.timeline.replaceChildren();
  ui.facts.replaceChildren();
  ui.ledgerRows.replaceChildren();
  loadFacts();
  loadLedger();
  view.stream = openEventStream({
    url: `/v1/sessions/${encodeURIComponent(sessionId)}/stream`,
    key: view.api.key,
    onEvent: (event) => {
      if (event.session_id === view.selected) addEvent(event);
    },
    onStatus: showConnection,
  });
}

function showConnection(status, detail) {
  showStreamStatus(ui.connection, status, detail, "live");
  if (status === "unauthorized") keyRefused();
}

/** Run `fn` once shortly, however many events ask for it meanwhile. */
function soon(name, fn) {
  if (view.pending.has(name)) return;
  view.pending.set(
    name,
    setTimeout(() => {
      view.pending.delete(name);
      fn();
    }, FOLLOW_UP_DELAY_MS),
  );
}

async function loadFacts() {
  const sessionId = view.selected;
  let s;
  try {
    s = await view.api.get(`/v1/sessions/${encodeURIComponent(sessionId)}`);
  } catch (err) {
    if (sessionId === view.selected) {
      const message = el("dd", { className: "error-text" }, err.message);
      ui.facts.replaceChildren(el("dt", {}, "Error"), message);
    }
    return;
  }
  if (sessionId !== view.selected) return;
  for (const m of s.messages) {
    view.texts.set(m.message_id, m.text ?? (m.button_id ? `[button ${m.button_id}]` : ""));
  }
  refreshMessageSummaries();
  const facts = [
    ["Customer", s.customer],
    ["Agent", `${s.agent} (${s.channel})`],
    ["Status", s.status],
    ["Flagged", s.flagged ? `yes: ${s.flag_reason ?? ""}` : "no"],
    ["Messages", `${s.last_seq} received, ${s.consumed_seq} answered`],
    ["State version", s.state_version],
    ["Started", new Date(s.created_at_ms).toLocaleString()],
    ["Session id", el("code", {}, s.session_id)],
  ];
  ui.facts.replaceChildren(
    ...facts.flatMap(([name, value]) => [el("dt", {}, name), el("dd", {}, value)]),
  );
}

async function loadLedger() {
  const sessionId = view.selected;
  let items;
  try {
    ({ items } = await view.api.get("/v1/ledger", { session_id: sessionId }));
  } catch (err) {
    if (sessionId === view.selected) {
      ui.ledgerEmpty.textContent = `Could not load the ledger: ${err.message}`;
    }
    return;
  }
  if (sessionId !== view.selected) return;
  ui.ledgerEmpty.textContent = "No tool executions in this session.";
  ui.ledgerEmpty.hidden = items.length > 0;
  ui.ledgerRows.replaceChildren(...items.map(ledgerRow));
}

function ledgerRow(e) {
  const took = e.finished_at_ms ? `${e.finished_at_ms - e.started_at_ms} ms` : "running";
  const args = Object.entries(e.args ?? {})
    .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join(", ");
  return el(
    "tr",
    { dataset: { executionId: e.execution_id, status: e.status } },
    el("td", {}, e.tool),
    el("td", {}, el("span", { className: `status-${e.status}` }, e.status)),
    el("td", {}, e.policy),
    el("td", { className: "args" }, el("code", {}, args)),
    el(
      "td",
      { className: "result" },
      e.error ? el("span", { className: "error-text" }, e.error) : expandable(e.result),
    ),
    el("td", {}, clock(e.started_at_ms)),
    el("td", {}, took),
    el("td", { className: "key" }, el("code", { title: e.idempotency_key }, e.idempotency_key)),
  );
}

/** A value on one line, its pretty JSON when opened. */
function expandable(value) {
  if (value === undefined || value === null) return "";
  return el(
    "details",
    {},
    el("summary", {}, json(value)),
    el("pre", {}, JSON.stringify(value, null, 2)),
  );
}

// ---------- the timeline ----------

function buildLegend() {
  for (const category of CATEGORIES) {
    const box = el("input", {
      type: "checkbox",
      checked: true,
      dataset: { category: category.id },
    });
    box.addEventListener("change", () => {
      if (box.checked) view.hidden.delete(category.id);
      else view.hidden.add(category.id);
      for (const row of ui.timeline.querySelectorAll(`li[data-category="${category.id}"]`)) {
        row.hidden = !box.checked;
      }
    });
    const swatch = el("span", { className: "swatch" });
    ui.legend.append(el("label", { className: `cat-${category.id}` }, box, swatch, category.label));
  }
}

const textOf = (messageId) => view.texts.get(messageId);

function addEvent(event) {
  if (view.seenEvents.has(event.event_id)) return;
  view.seenEvents.add(event.event_id);
  if (view.originMs === null) view.originMs = event.at_ms;
  const category = categoryOf(event.kind);
  const at = new Date(event.at_ms);
  const row = el(
    "li",
    {
      className: `cat-${category}${event.kind === "window.opened" ? " turn-start" : ""}`,
      hidden: view.hidden.has(category),
      dataset: { kind: event.kind, category, eventId: event.event_id },
    },
    el(
      "details",
      {},
      el(
        "summary",
        {},
        el(
          "time",
          { dateTime: at.toISOString(), title: at.toLocaleString() },
          relativeTime(event.at_ms, view.originMs),
        ),
        el(
          "span",
          { className: "kind", title: `category: ${category}` },
          el("span", { className: "visually-hidden" }, `${category}: `),
          event.kind,
        ),
        el("span", { className: "summary" }, summarize(event, { textOf })),
        el(
          "span",
          { className: "turn-chip", title: event.turn_id ?? "" },
          event.turn_id ? `turn ${shortId(event.turn_id)}` : "",
        ),
      ),
      el("pre", {}, JSON.stringify({ data: event.data, correlation: event.correlation }, null, 2)),
    ),
  );
  row.event = event;
  const atBottom = ui.timeline.scrollHeight - ui.timeline.scrollTop - ui.timeline.clientHeight < 60;
  ui.timeline.append(row);
  if (atBottom) ui.timeline.scrollTop = ui.timeline.scrollHeight;

  const family = event.kind.split(".")[0];
  if (family === "tool" || family === "confirmation") soon("ledger", loadLedger);
  if (
    (event.kind === "message.received" && textOf(event.data?.message_id) === undefined) ||
    ["turn.committed", "turn.failed", "session.flagged", "response.delivered"].includes(event.kind)
  ) {
    soon("facts", loadFacts);
  }
}

function refreshMessageSummaries() {
  for (const row of ui.timeline.querySelectorAll('li[data-kind="message.received"]')) {
    row.querySelector(".summary").textContent = summarize(row.event, { textOf });
  }
}

// ---------- go ----------

const key = currentKey();
if (key) start(key);
else askForKey(ui.keyForm, "Open the link that acf serve printed, or paste an API key here.", start);
