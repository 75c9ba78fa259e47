// The inbox's chosen conversation: what the operator needs to know (the handoff, the
// session), its live timeline, the replies in its outbox (agent, operator, notices), the
// internal notes and the tool ledger; and the operator's actions on it: claim, reply, note,
// release, resume. Every refusal is shown in words (people.js `explain`).

import { el, randomId } from "./api.js";
import { openEventStream, showStreamStatus } from "./sse.js";
import { relativeTime } from "./timeline.js";
import {
  clock,
  duration,
  eventCategory,
  eventSummary,
  explain,
  ledgerRow,
  outboxItem,
  sendReply,
  shortId,
  when,
  who,
} from "./people.js";

const FOLLOW_UP_DELAY_MS = 250;

export class Conversation {
  /**
   * `ui`: the page's elements; `hooks.changed()` after an action (the inbox reloads),
   * `hooks.refused()` when the key is refused (401).
   */
  constructor(ui, api, hooks) {
    this.ui = ui;
    this.api = api;
    this.hooks = hooks;
    this.sessionId = null;
    this.entry = null;
    this.session = null;
    this.stream = null;
    this.busy = false;
    this.replyKey = null; // one Idempotency-Key per reply until it is accepted
    this.signatures = {};
    this.reset();
    ui.claim.addEventListener("click", () => this.claim());
    ui.release.addEventListener("click", () => this.release());
    ui.resume.addEventListener("click", () => this.resume());
    ui.replyForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this.reply();
    });
    ui.replyText.addEventListener("input", () => (this.replyKey = null));
    ui.replyButtons.addEventListener("input", () => (this.replyKey = null));
    ui.noteForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this.addNote();
    });
  }

  reset() {
    this.seenEvents = new Set();
    this.originMs = null;
    this.texts = new Map(); // message id -> text
    this.operatorTurns = new Map(); // turn id -> operator name
    this.pending = new Map();
    this.signatures = {};
  }

  path(suffix = "") {
    return `/v1/sessions/${encodeURIComponent(this.sessionId)}${suffix}`;
  }

  /** Show `sessionId`; `entry` is its inbox entry when the inbox lists it. */
  open(sessionId, entry) {
    if (sessionId === this.sessionId) {
      this.update(entry);
      return;
    }
    this.stream?.close();
    for (const timer of this.pending.values()) clearTimeout(timer);
    this.sessionId = sessionId;
    this.entry = entry ?? null;
    this.session = null;
    this.replyKey = null;
    this.reset();
    const ui = this.ui;
    ui.title.textContent = `Conversation ${shortId(sessionId)}`;
    ui.view.hidden = false;
    for (const list of [ui.timeline, ui.facts, ui.outbox, ui.notes, ui.ledgerRows]) list.replaceChildren();
    this.say("");
    this.refresh();
    this.stream = openEventStream({
      url: this.path("/stream"),
      key: this.api.key,
      pollUrl: this.path("/events"),
      onEvent: (event) => {
        if (event.session_id === this.sessionId && event.event_id !== undefined) this.addEvent(event);
      },
      onStatus: (status, detail) => {
        showStreamStatus(ui.connection, status, detail, "live");
        if (status === "unauthorized") this.hooks.refused();
      },
    });
  }

  close() {
    this.stream?.close();
  }

  /** The inbox's latest entry for this conversation (null: the chosen state does not list it). */
  update(entry) {
    if (entry) this.entry = entry;
    this.showFacts();
  }

  refresh() {
    this.loadSession();
    this.loadNotes();
    this.loadLedger();
  }

  say(text, isError = false) {
    this.ui.actionNote.textContent = text;
    this.ui.actionNote.classList.toggle("error-text", isError);
  }

  // ---------- what the operator reads ----------

  async loadSession() {
    const sessionId = this.sessionId;
    let s;
    try {
      s = await this.api.get(this.path());
    } catch (err) {
      if (sessionId === this.sessionId && err.status !== 401) this.say(explain(err, "load the conversation"), true);
      return;
    }
    if (sessionId !== this.sessionId) return;
    this.session = s;
    for (const m of s.messages) {
      this.texts.set(m.message_id, m.text ?? (m.button_id ? `[button ${m.button_id}]` : ""));
    }
    for (const row of this.ui.timeline.querySelectorAll('li[data-kind="message.received"]')) {
      row.querySelector(".summary").textContent = eventSummary(row.event, { textOf: (id) => this.texts.get(id) });
    }
    this.showFacts();
    this.showOutbox();
  }

  showFacts() {
    const e = this.entry;
    const s = this.session;
    const facts = [];
    if (s || e) facts.push(["Customer", `${(s ?? e).customer} (${(s ?? e).channel})`], ["Agent", (s ?? e).agent]);
    if (e) {
      facts.push(["Reason", `${e.reason ?? ""}${e.source ? ` (${e.source})` : ""}`]);
      if (e.resolved_at_ms) facts.push(["Resolved", when(e.resolved_at_ms)]);
      else facts.push(["Waiting", `${duration(e.waiting_ms)} since ${clock(e.waiting_since_ms)}`]);
      facts.push(["Unanswered", String(e.unanswered)]);
      facts.push(["SLA", e.sla_breached_at_ms ? `breached at ${clock(e.sla_breached_at_ms)}` : "within"]);
      facts.push([
        "Held by",
        e.claimed_by ? `${who(e.claimed_by)} until ${clock(e.claim_expires_at_ms)}` : "nobody (unclaimed)",
      ]);
    }
    const mode = s?.mode ?? e?.mode;
    if (mode) facts.push(["Mode", mode]);
    if (s) {
      facts.push(["Status", s.status]);
      facts.push(["Messages", `${s.last_seq} received, ${s.consumed_seq} answered`]);
    }
    facts.push(["Session id", el("code", {}, this.sessionId)]);
    if (s || e) this.ui.title.textContent = `Conversation with ${(s ?? e).customer}`;
    const signature = JSON.stringify(facts.map(([name, value]) => [name, String(value?.textContent ?? value)]));
    if (signature === this.signatures.facts) return;
    this.signatures.facts = signature;
    this.ui.facts.replaceChildren(...facts.flatMap(([name, value]) => [el("dt", {}, name), el("dd", {}, value)]));
  }

  authorOf(reply) {
    if (reply.author) return reply.author;
    if (this.operatorTurns.has(reply.turn_id)) return "operator";
    return String(reply.turn_id).startsWith("operator-") ? "system" : "agent";
  }

  showOutbox() {
    const replies = this.session?.replies ?? [];
    const rows = replies.map((r) => ({ ...r, author: this.authorOf(r) }));
    const signature = JSON.stringify([rows, [...this.operatorTurns]]);
    if (signature === this.signatures.outbox) return;
    this.signatures.outbox = signature;
    this.ui.outboxEmpty.hidden = rows.length > 0;
    this.ui.outbox.replaceChildren(
      ...rows.map((r) => outboxItem(r, r.author === "operator" ? this.operatorTurns.get(r.turn_id) : "")),
    );
  }

  async loadNotes() {
    const sessionId = this.sessionId;
    let notes;
    try {
      ({ notes } = await this.api.get(this.path("/notes")));
    } catch (err) {
      if (sessionId === this.sessionId && err.status !== 401) this.say(explain(err, "load the notes"), true);
      return;
    }
    if (sessionId !== this.sessionId) return;
    const signature = JSON.stringify(notes);
    if (signature === this.signatures.notes) return;
    this.signatures.notes = signature;
    this.ui.notes.replaceChildren(
      ...notes.map((n) =>
        el(
          "li",
          { dataset: { noteId: n.note_id } },
          el("span", { className: "author" }, who(n.author)),
          " ",
          el("time", { dateTime: new Date(n.created_at_ms).toISOString() }, when(n.created_at_ms)),
          el("p", {}, n.text),
        ),
      ),
    );
  }

  async loadLedger() {
    const sessionId = this.sessionId;
    let items;
    try {
      ({ items } = await this.api.get("/v1/ledger", { session_id: sessionId }));
    } catch (err) {
      if (sessionId === this.sessionId) this.ui.ledgerEmpty.textContent = explain(err, "load the ledger");
      return;
    }
    if (sessionId !== this.sessionId) return;
    const signature = JSON.stringify(items);
    if (signature === this.signatures.ledger) return;
    this.signatures.ledger = signature;
    this.ui.ledgerEmpty.textContent = "No tool executions in this session.";
    this.ui.ledgerEmpty.hidden = items.length > 0;
    this.ui.ledgerRows.replaceChildren(...items.map(ledgerRow));
  }

  /** Run `fn` once shortly, however many events ask for it meanwhile. */
  soon(name, fn) {
    if (this.pending.has(name)) return;
    this.pending.set(
      name,
      setTimeout(() => {
        this.pending.delete(name);
        fn();
      }, FOLLOW_UP_DELAY_MS),
    );
  }

  addEvent(event) {
    if (this.seenEvents.has(event.event_id)) return;
    this.seenEvents.add(event.event_id);
    if (this.originMs === null) this.originMs = event.at_ms;
    if (event.kind === "operator.replied" && event.turn_id) {
      this.operatorTurns.set(event.turn_id, who(event.data?.by));
    }
    const category = eventCategory(event.kind);
    const at = new Date(event.at_ms);
    const row = el(
      "li",
      { className: `cat-${category}`, dataset: { kind: event.kind, category, eventId: event.event_id } },
      el(
        "details",
        {},
        el(
          "summary",
          {},
          el("time", { dateTime: at.toISOString(), title: at.toLocaleString() }, relativeTime(event.at_ms, this.originMs)),
          el("span", { className: "kind" }, event.kind),
          el("span", { className: "summary" }, eventSummary(event, { textOf: (id) => this.texts.get(id) })),
          el("span", { className: "turn-chip", title: event.turn_id ?? "" }, event.turn_id ? `turn ${shortId(event.turn_id)}` : ""),
        ),
        el("pre", {}, JSON.stringify({ data: event.data, correlation: event.correlation }, null, 2)),
      ),
    );
    row.event = event;
    const timeline = this.ui.timeline;
    const atBottom = timeline.scrollHeight - timeline.scrollTop - timeline.clientHeight < 60;
    timeline.append(row);
    if (atBottom) timeline.scrollTop = timeline.scrollHeight;
    const family = event.kind.split(".")[0];
    if (family === "tool" || family === "confirmation") this.soon("ledger", () => this.loadLedger());
    if (family === "operator" && event.kind === "operator.note_added") this.soon("notes", () => this.loadNotes());
    if (["message", "response", "turn", "operator", "session", "handoff", "abuse"].includes(family)) {
      this.soon("session", () => this.loadSession());
    }
  }

  // ---------- what the operator does ----------

  async act(doing, call, done) {
    if (this.busy || !this.sessionId) return;
    this.busy = true;
    const buttons = this.ui.view.querySelectorAll("button");
    for (const button of buttons) button.disabled = true;
    try {
      const answer = await call();
      this.say(done(answer));
      return answer;
    } catch (err) {
      if (err.status !== 401) this.say(explain(err, doing), true);
      return undefined;
    } finally {
      this.busy = false;
      for (const button of buttons) button.disabled = false;
      this.hooks.changed();
      this.refresh();
    }
  }

  /** What an action answered about the handoff (a handoff, or the session's mode with its open handoff). */
  learn(answer) {
    if (!answer || !this.entry) return;
    if ("handoff_id" in answer) this.entry = { ...this.entry, ...answer };
    else if ("mode" in answer) {
      const resolved = { claimed_by: null, claim_expires_at_ms: null, resolved_at_ms: Date.now() };
      this.entry = { ...this.entry, mode: answer.mode, ...(answer.handoff ?? resolved) };
    }
    this.showFacts();
  }

  claim() {
    return this.act("claim", () => this.api.post(this.path("/claim"), {}), (answer) => {
      this.learn(answer);
      return "You hold this conversation now.";
    });
  }

  release() {
    const note = this.ui.handoverNote.value.trim();
    return this.act(
      "release",
      () => this.api.post(this.path("/release"), note ? { note } : {}),
      (answer) => {
        this.learn(answer);
        this.ui.handoverNote.value = "";
        return "Released: another operator can claim it; the agent still stays silent.";
      },
    );
  }

  resume() {
    const note = this.ui.handoverNote.value.trim();
    return this.act(
      "resume the agent",
      () => this.api.post(this.path("/resume"), note ? { note } : {}),
      (answer) => {
        this.learn(answer);
        this.ui.handoverNote.value = "";
        return `The agent answers again${note ? " and sees your note" : ""}.`;
      },
    );
  }

  async reply() {
    const text = this.ui.replyText.value.trim();
    if (!text) return;
    const buttons = this.ui.replyButtons.value
      .split(",")
      .map((b) => b.trim())
      .filter(Boolean);
    const body = buttons.length ? { text, buttons } : { text };
    this.replyKey ??= randomId("operator-reply-");
    const key = this.replyKey;
    const sessionId = this.sessionId;
    // The key goes only with a definitive answer: a reply acf committed (409 in_progress)
    // or may have committed (a lost answer) is sent again with the same key, never twice.
    const send = () =>
      sendReply(this.api, this.path("/operator-messages"), body, key, {
        waiting: (ms) => this.say(`Sending the reply: acf asks to wait ${Math.ceil(ms / 1000)} s…`),
        current: () => sessionId === this.sessionId,
      }).catch((err) => {
        if (!err.keepKey && this.replyKey === key) this.replyKey = null;
        throw err;
      });
    const answer = await this.act("send the reply", send, (a) => {
      this.ui.replyText.value = "";
      this.ui.replyButtons.value = "";
      if (this.replyKey === key) this.replyKey = null;
      return `Reply queued (${a?.outbox_ids?.length ?? 1} part${a?.outbox_ids?.length === 1 ? "" : "s"}).`;
    });
    if (answer?.turn_id) this.operatorTurns.set(answer.turn_id, this.operatorTurns.get(answer.turn_id) ?? "you");
  }

  addNote() {
    const text = this.ui.noteText.value.trim();
    if (!text) return;
    return this.act("add the note", () => this.api.post(this.path("/notes"), { text }), () => {
      this.ui.noteText.value = "";
      return "Note added (the customer never sees it).";
    });
  }
}
