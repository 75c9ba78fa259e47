// The inbox page's Holds tab: the sessions the agent does not answer now (handed to a
// person, cooling down, blocked) with the messages they hold and why; the block list
// (block a customer, lift a block); and the tenant's abuse summary.

import { el } from "./api.js";
import { explain, when, who } from "./people.js";

const MODE_WORDS = {
  human: "with a person",
  cooldown: "cooling down",
  blocked: "blocked",
};

const NOBODY = "Nobody is blocked.";
const FIREWALL = "firewall"; // a block's `created_by` when the firewall blocked automatically
const EXPIRY = "expiry"; // a block's `lifted_by` when it expired

export class Holds {
  /** `hooks.open(sessionId)` shows a held session's conversation in the inbox tab. */
  constructor(ui, api, hooks) {
    this.ui = ui;
    this.api = api;
    this.hooks = hooks;
    this.signatures = {};
    this.busy = false;
    ui.blockForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this.block();
    });
    ui.showLifted.addEventListener("change", () => {
      this.signatures.blocks = "";
      this.loadBlocks();
    });
  }

  load() {
    return Promise.all([this.loadHolds(), this.loadBlocks(), this.loadSummary()]);
  }

  blocksNote(text, isError = false) {
    this.ui.blocksNote.textContent = text;
    this.ui.blocksNote.classList.toggle("error-text", isError);
  }

  // ---------- held sessions ----------

  async loadHolds() {
    let sessions;
    try {
      ({ sessions } = await this.api.get("/v1/holds"));
    } catch (err) {
      if (err.status !== 401) this.ui.holdsNote.textContent = explain(err, "load the held sessions");
      return;
    }
    this.ui.holdsNote.textContent = sessions.length ? "" : "No session is held: the agent answers every one.";
    const signature = JSON.stringify(sessions);
    if (signature === this.signatures.holds) return;
    this.signatures.holds = signature;
    this.ui.holdRows.replaceChildren(...sessions.map((s) => this.holdRow(s)));
  }

  holdRow(s) {
    const open = el(
      "button",
      { type: "button", "aria-label": `Open the conversation with ${s.customer}` },
      "Open",
    );
    open.addEventListener("click", () => this.hooks.open(s.session_id));
    return el(
      "tr",
      { dataset: { sessionId: s.session_id, mode: s.mode, customer: s.customer } },
      el("th", { scope: "row" }, s.customer),
      el("td", {}, s.channel),
      el("td", {}, s.agent),
      el("td", {}, el("span", { className: `badge mode-${s.mode}` }, MODE_WORDS[s.mode] ?? s.mode)),
      el("td", { className: "message" }, s.mode_reason ?? ""),
      el("td", {}, when(s.mode_since_ms)),
      el("td", {}, s.mode_until_ms ? when(s.mode_until_ms) : ""),
      el("td", { className: "count" }, String(s.held_messages)),
      el("td", {}, open),
    );
  }

  // ---------- the block list ----------

  async loadBlocks() {
    let blocks;
    try {
      ({ blocks } = await this.api.get("/v1/blocks", { include_lifted: this.ui.showLifted.checked || undefined }));
    } catch (err) {
      if (err.status !== 401) this.blocksNote(explain(err, "load the block list"), true);
      return;
    }
    const shown = this.ui.showLifted.checked ? blocks : blocks.filter((b) => b.active);
    const note = this.ui.blocksNote.textContent;
    if (!shown.length && !note) this.blocksNote(NOBODY);
    else if (shown.length && note === NOBODY) this.blocksNote("");
    const signature = JSON.stringify(shown);
    if (signature === this.signatures.blocks) return;
    this.signatures.blocks = signature;
    this.ui.blockRows.replaceChildren(...shown.map((b) => this.blockRow(b)));
  }

  blockRow(b) {
    let state = "active";
    if (b.lifted_by === EXPIRY || (!b.active && !b.lifted_at_ms)) state = `expired ${when(b.lifted_at_ms ?? b.expires_at_ms)}`;
    else if (b.lifted_at_ms) state = `lifted${b.lifted_by ? ` by ${who(b.lifted_by)}` : ""} at ${when(b.lifted_at_ms)}`;
    const actions = [];
    if (b.active) {
      const lift = el(
        "button",
        { type: "button", "aria-label": `Unblock ${b.customer} on ${b.channel}` },
        "Unblock",
      );
      lift.addEventListener("click", () => this.unblock(b));
      actions.push(lift);
    }
    return el(
      "tr",
      { dataset: { blockId: b.block_id, customer: b.customer, channel: b.channel, active: String(b.active) } },
      el("th", { scope: "row" }, b.customer),
      el("td", {}, b.channel),
      el("td", { className: "message" }, b.reason),
      el("td", {}, b.created_by === FIREWALL ? "the firewall (automatic)" : who(b.created_by)),
      el("td", {}, when(b.created_at_ms)),
      el("td", {}, b.expires_at_ms ? when(b.expires_at_ms) : "never"),
      el("td", {}, el("span", { className: `badge block-${b.active ? "active" : "lifted"}` }, state)),
      el("td", { className: "actions" }, ...actions),
    );
  }

  /** Run a change of the block list; true when acf took it. */
  async change(doing, call, done, words = {}) {
    if (this.busy) return false;
    this.busy = true;
    const buttons = [...this.ui.panel.querySelectorAll("button")];
    for (const button of buttons) button.disabled = true;
    try {
      await call();
      this.blocksNote(done);
      return true;
    } catch (err) {
      if (err.status !== 401) this.blocksNote(explain(err, doing, words), true);
      return false;
    } finally {
      this.busy = false;
      for (const button of buttons) button.disabled = false;
      this.signatures = {};
      await this.load();
    }
  }

  async block() {
    const channel = this.ui.blockChannel.value;
    const customer = this.ui.blockCustomer.value.trim();
    const reason = this.ui.blockReason.value.trim();
    if (!customer || !reason) return;
    const body = { channel, customer, reason };
    const expiry = this.ui.blockExpiry.value;
    if (expiry) body.expires_in_s = Number(expiry);
    const done = `${customer} (${channel}) is blocked.`;
    const taken = await this.change("block the customer", () => this.api.post("/v1/blocks", body), done, {
      blocked: `${customer} is on the block list of ${channel} already.`,
      conflict: `${customer} is on the block list of ${channel} already.`,
    });
    if (taken) {
      this.ui.blockCustomer.value = "";
      this.ui.blockReason.value = "";
    }
  }

  unblock(b) {
    return this.change(
      `unblock ${b.customer}`,
      () => this.api.request("DELETE", `/v1/blocks/${encodeURIComponent(b.block_id)}`),
      `${b.customer} (${b.channel}) is unblocked: the agent answers their next messages.`,
      { not_found: "This block is gone already (lifted or expired): the list is read again." },
    );
  }

  // ---------- the abuse summary ----------

  async loadSummary() {
    let summary;
    try {
      summary = await this.api.get("/v1/abuse/summary");
    } catch (err) {
      if (err.status !== 401) this.ui.abuseNote.textContent = explain(err, "load the abuse summary");
      return;
    }
    this.ui.abuseNote.textContent = `Since ${when(summary.since_ms)}${
      summary.truncated ? " (only the newest events were counted: there were more)" : ""
    }.`;
    const rows = summaryRows(summary);
    const signature = JSON.stringify(rows);
    if (signature === this.signatures.summary) return;
    this.signatures.summary = signature;
    this.ui.abuseSummary.replaceChildren(
      ...rows.flatMap(([key, name, value]) => [el("dt", { dataset: { key } }, name), el("dd", {}, value)]),
    );
  }
}

const SUMMARY_LABELS = {
  cooldowns_started: "Cool-downs started",
  blocks_active: "Customers blocked now",
  held_messages: "Messages held now (cool-down, blocked)",
  dropped_messages: "Messages dropped (blocked customers)",
  rate_exceeded: "Provider messages over the tenant's rate (taken)",
};
const SUMMARY_SKIPPED = new Set(["since_ms", "truncated"]);

/** The summary as `[key, label, value]` rows: each detector's findings, then the counts. */
function summaryRows(summary) {
  const rows = Object.entries(summary.suspected ?? {}).map(([detector, count]) => [
    `suspected.${detector}`,
    `Detector fired: ${detector.replaceAll("_", " ")}`,
    String(count),
  ]);
  for (const [key, value] of Object.entries(summary)) {
    if (key === "suspected" || SUMMARY_SKIPPED.has(key)) continue;
    const text = typeof value === "object" && value !== null ? JSON.stringify(value) : String(value);
    rows.push([key, SUMMARY_LABELS[key] ?? key.replaceAll("_", " "), text]);
  }
  return rows;
}
