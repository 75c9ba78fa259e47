// The console's inbox (/console/inbox): the conversations handed to a person, longest
// waiting first, and the one chosen (conversation.js: timeline, outbox, notes, ledger,
// claim, reply, note, release, resume); a form to hand any session to a person; and the
// Holds tab (holds.js: held sessions, the block list, the abuse summary).
//
// Every call needs an operator key (`acf keys create --tenant T --scope operator`) or an
// admin one; an "api" key is refused with 403 and the page asks for another. The lists are
// read again every few seconds; the chosen conversation's events come from its stream.

import { Api, askForKey, currentKey, el, forgetKey } from "./api.js";
import { Conversation } from "./conversation.js";
import { Holds } from "./holds.js";
import { clock, duration, explain, who } from "./people.js";

const REFRESH_MS = 3000;

const $ = (id) => document.getElementById(id);
const ui = {
  keyForm: $("key-form"),
  main: $("people-page"),
  connection: $("connection"),
  tabs: { inbox: $("tab-inbox"), holds: $("tab-holds") },
  panels: { inbox: $("panel-inbox"), holds: $("panel-holds") },
  state: $("inbox-state"),
  refresh: $("refresh-inbox"),
  inboxNote: $("inbox-note"),
  inbox: $("inbox"),
  handoffForm: $("handoff-form"),
  handoffSession: $("handoff-session"),
  handoffReason: $("handoff-reason"),
  handoffNote: $("handoff-note"),
};
const conversationUi = {
  connection: ui.connection,
  title: $("conversation-title"),
  view: $("conversation"),
  facts: $("conversation-facts"),
  claim: $("claim"),
  release: $("release"),
  resume: $("resume"),
  handoverNote: $("handover-note"),
  actionNote: $("action-note"),
  replyForm: $("reply-form"),
  replyText: $("reply-text"),
  replyButtons: $("reply-buttons"),
  noteForm: $("note-form"),
  noteText: $("note-text"),
  notes: $("notes"),
  outbox: $("outbox"),
  outboxEmpty: $("outbox-empty"),
  timeline: $("timeline"),
  ledgerRows: $("ledger-rows"),
  ledgerEmpty: $("ledger-empty"),
};
const holdsUi = {
  panel: ui.panels.holds,
  holdsNote: $("holds-note"),
  holdRows: $("hold-rows"),
  blockForm: $("block-form"),
  blockChannel: $("block-channel"),
  blockCustomer: $("block-customer"),
  blockReason: $("block-reason"),
  blockExpiry: $("block-expiry"),
  showLifted: $("show-lifted"),
  blocksNote: $("blocks-note"),
  blockRows: $("block-rows"),
  abuseNote: $("abuse-note"),
  abuseSummary: $("abuse-summary"),
};

const view = {
  api: null,
  tab: "inbox",
  entries: [],
  signature: "",
  selected: null,
  conversation: null,
  holds: null,
  timer: null,
};

// ---------- start ----------

function start(key) {
  view.api = new Api(key, () => refused("acf refused the key (unknown or revoked). Enter an operator key."));
  view.conversation = new Conversation(conversationUi, view.api, {
    changed: () => loadInbox(),
    refused: () => refused("acf refused the key (unknown or revoked). Enter an operator key."),
  });
  view.holds = new Holds(holdsUi, view.api, { open: (sessionId) => openFromHolds(sessionId) });
  ui.main.hidden = false;
  for (const [name, tab] of Object.entries(ui.tabs)) {
    tab.addEventListener("click", () => showTab(name));
    tab.addEventListener("keydown", (event) => {
      if (event.key !== "ArrowRight" && event.key !== "ArrowLeft") return;
      const other = name === "inbox" ? "holds" : "inbox";
      showTab(other);
      ui.tabs[other].focus();
    });
  }
  ui.state.addEventListener("change", () => loadInbox());
  ui.refresh.addEventListener("click", () => {
    loadInbox();
    view.conversation.refresh();
  });
  ui.handoffForm.addEventListener("submit", (event) => {
    event.preventDefault();
    handOff();
  });
  const fromHash = new URLSearchParams(window.location.hash.slice(1));
  showTab(fromHash.get("tab") === "holds" ? "holds" : "inbox");
  if (fromHash.get("session")) select(fromHash.get("session"));
  view.timer = setInterval(() => {
    if (document.hidden) return;
    if (view.tab === "holds") view.holds.load();
    else {
      loadInbox();
      if (view.selected) view.conversation.refresh();
    }
  }, REFRESH_MS);
}

function refused(message) {
  forgetKey();
  clearInterval(view.timer);
  view.conversation?.close();
  ui.main.hidden = true;
  askForKey(ui.keyForm, message, () => window.location.reload());
}

function remember() {
  const hash = new URLSearchParams();
  if (view.tab !== "inbox") hash.set("tab", view.tab);
  if (view.selected) hash.set("session", view.selected);
  const text = hash.toString();
  const { pathname, search } = window.location;
  window.history.replaceState(window.history.state, "", text ? `#${text}` : pathname + search);
}

function showTab(name) {
  view.tab = name;
  for (const [tabName, tab] of Object.entries(ui.tabs)) {
    const chosen = tabName === name;
    tab.setAttribute("aria-selected", String(chosen));
    tab.tabIndex = chosen ? 0 : -1;
    ui.panels[tabName].hidden = !chosen;
  }
  remember();
  if (name === "holds") view.holds.load();
  else loadInbox();
}

// ---------- the inbox ----------

async function loadInbox() {
  let answer;
  try {
    answer = await view.api.get("/v1/inbox", { state: ui.state.value });
  } catch (err) {
    if (err.status === 403) return refused(err.message);
    if (err.status !== 401) ui.inboxNote.textContent = explain(err, "load the inbox");
    return;
  }
  view.entries = answer.entries;
  const sla = answer.sla_ms ? ` The SLA is ${duration(answer.sla_ms)}.` : "";
  ui.inboxNote.textContent = answer.entries.length
    ? `${answer.entries.length} conversation${answer.entries.length === 1 ? "" : "s"}.${sla}`
    : `Nobody is waiting.${sla}`;
  const current = answer.entries.find((e) => e.session_id === view.selected);
  if (current) view.conversation.update(current);
  // waiting times change on every read: they are written in place, not redrawn
  const signature = JSON.stringify([answer.entries.map(({ waiting_ms, ...rest }) => rest), view.selected]);
  if (signature !== view.signature) {
    view.signature = signature;
    const focused = document.activeElement?.dataset?.sessionId;
    ui.inbox.replaceChildren(...answer.entries.map(entryItem));
    if (focused) ui.inbox.querySelector(`[data-session-id="${CSS.escape(focused)}"]`)?.focus();
  }
  for (const entry of answer.entries) {
    const waiting = ui.inbox.querySelector(`[data-session-id="${CSS.escape(entry.session_id)}"] .waiting`);
    if (waiting) waiting.textContent = waitingText(entry);
  }
}

function waitingText(e) {
  return e.resolved_at_ms ? `resolved ${clock(e.resolved_at_ms)}` : `waiting ${duration(e.waiting_ms)}`;
}

function entryState(e) {
  if (e.resolved_at_ms) return "resolved";
  return e.claimed_by ? "claimed" : "waiting";
}

function entryItem(e) {
  const state = entryState(e);
  const badges = [el("span", { className: `badge handoff-${state}` }, state)];
  if (e.sla_breached_at_ms && !e.resolved_at_ms) {
    badges.push(
      el("span", { className: "badge sla-breached", title: `SLA breached at ${clock(e.sla_breached_at_ms)}` }, "SLA breached"),
    );
  }
  if (e.unanswered > 0) {
    badges.push(el("span", { className: "badge unanswered" }, `${e.unanswered} unanswered`));
  }
  const holder = e.claimed_by ? `held by ${who(e.claimed_by)}` : "unclaimed";
  const button = el(
    "button",
    {
      type: "button",
      dataset: { sessionId: e.session_id, customer: e.customer, state },
      "aria-current": e.session_id === view.selected ? "true" : "false",
      onclick: () => select(e.session_id),
    },
    el("span", { className: "who" }, e.customer),
    el("span", { className: "facts" }, ...badges.flatMap((b) => [b, " "])),
    el(
      "span",
      { className: "facts" },
      `${e.reason ?? ""}${e.source ? ` (${e.source})` : ""} · ${e.channel} · `,
      el("span", { className: "waiting" }, waitingText(e)),
      ` · ${holder}`,
    ),
    e.preview ? el("span", { className: "preview" }, e.preview) : null,
  );
  return el("li", { dataset: { handoffId: e.handoff_id } }, button);
}

function select(sessionId) {
  view.selected = sessionId;
  for (const button of ui.inbox.querySelectorAll("button[data-session-id]")) {
    button.setAttribute("aria-current", button.dataset.sessionId === sessionId ? "true" : "false");
  }
  view.signature = "";
  remember();
  view.conversation.open(sessionId, view.entries.find((e) => e.session_id === sessionId));
}

function openFromHolds(sessionId) {
  showTab("inbox");
  select(sessionId);
}

async function handOff() {
  const sessionId = ui.handoffSession.value.trim();
  const reason = ui.handoffReason.value.trim();
  if (!sessionId || !reason) return;
  const submit = ui.handoffForm.querySelector("button");
  submit.disabled = true;
  ui.handoffNote.classList.remove("error-text");
  try {
    await view.api.post(`/v1/sessions/${encodeURIComponent(sessionId)}/handoff`, { reason });
    ui.handoffNote.textContent = "Handed to a person: the agent stays silent until someone resumes it.";
    ui.handoffSession.value = "";
    select(sessionId);
  } catch (err) {
    if (err.status !== 401) {
      ui.handoffNote.textContent = explain(err, "hand it off");
      ui.handoffNote.classList.add("error-text");
    }
  } finally {
    submit.disabled = false;
    loadInbox();
  }
}

// ---------- go ----------

const key = currentKey();
if (key) start(key);
else askForKey(ui.keyForm, "Open the link with ?key=, or paste an operator API key here.", start);
