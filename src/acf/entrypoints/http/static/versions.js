// The console's configuration page: the tenant's versions (promote, canary, rollback), a
// diff of two versions, and the canary's status, with a banner when the last canary was
// rolled back automatically. Every call needs an admin key (`acf keys create --scope admin`);
// an "api" key is refused with 403 and the page asks for an admin one.

import { Api, askForKey, currentKey, el, forgetKey } from "./api.js";

const REFRESH_MS = 5000;

const $ = (id) => document.getElementById(id);
const ui = {
  keyForm: $("key-form"),
  main: $("versions-page"),
  banner: $("canary-banner"),
  canarySummary: $("canary-summary"),
  arms: $("canary-arms"),
  armRows: $("canary-arm-rows"),
  decisions: $("decisions"),
  share: $("canary-share"),
  force: $("force-promote"),
  rollback: $("rollback"),
  refresh: $("refresh-versions"),
  note: $("versions-note"),
  rows: $("version-rows"),
  diffForm: $("diff-form"),
  diffA: $("diff-a"),
  diffB: $("diff-b"),
  diffNote: $("diff-note"),
  diff: $("diff"),
  diffRows: $("diff-rows"),
  diffBefore: $("diff-before"),
  diffAfter: $("diff-after"),
};

const view = { api: null, signature: "", pointer: null, busy: false, timer: null };

function start(key) {
  view.api = new Api(key, () => refused("acf refused the key (unknown or revoked). Enter an admin key."));
  ui.main.hidden = false;
  ui.refresh.addEventListener("click", () => loadAll());
  ui.rollback.addEventListener("click", () => rollback());
  ui.diffForm.addEventListener("submit", (event) => {
    event.preventDefault();
    showDiff();
  });
  loadAll();
  view.timer = setInterval(() => {
    if (!document.hidden && !view.busy) loadAll();
  }, REFRESH_MS);
}

function refused(message) {
  forgetKey();
  clearInterval(view.timer);
  ui.main.hidden = true;
  askForKey(ui.keyForm, message, () => window.location.reload());
}

function note(text, isError = false) {
  ui.note.textContent = text;
  ui.note.classList.toggle("error-text", isError);
}

function when(ms) {
  return ms ? new Date(ms).toLocaleString() : "";
}

function percent(rate) {
  return `${(rate * 100).toFixed(1)}%`;
}

function valueText(value) {
  if (value === null || value === undefined) return "—";
  return typeof value === "string" ? value : JSON.stringify(value);
}

async function loadAll() {
  await Promise.all([loadVersions(), loadCanary()]);
}

// ---------- versions ----------

async function loadVersions() {
  let listed;
  try {
    listed = await view.api.get("/v1/config/versions", { limit: 100 });
  } catch (err) {
    if (err.status === 403) return refused(`${err.message}`);
    note(`Could not load the versions: ${err.message}`, true);
    return;
  }
  view.pointer = listed;
  ui.rollback.disabled = !listed.previous_live;
  ui.rollback.textContent = listed.previous_live ? `Roll back to v${listed.previous_live}` : "Roll back";
  const signature = JSON.stringify(listed);
  if (signature === view.signature) return; // nothing changed: keep focus
  view.signature = signature;
  if (!listed.items.length) note("No versions yet: push one with `acf config push FILE`.");
  ui.rows.replaceChildren(...listed.items.map((v) => versionRow(v, listed)));
  fillDiffChoices(listed.items);
}

function statusText(v, pointer) {
  let text = v.status;
  if (v.number === pointer.canary) text += ` ${pointer.canary_share}%`;
  if (v.rolled_back) text += " (rolled back)";
  return text;
}

function gatesText(gates) {
  return Object.entries(gates ?? {})
    .map(([name, g]) => `${name} ${g?.passed ? "passed" : "failed"}`)
    .join(", ");
}

function versionRow(v, pointer) {
  const promote = el(
    "button",
    {
      type: "button",
      className: "primary",
      disabled: v.status === "live" || v.rolled_back,
      "aria-label": `Promote ${v.label}`,
    },
    "Promote",
  );
  promote.addEventListener("click", () => act(`/v1/config/versions/${v.number}/promote`, { force: ui.force.checked }, `${v.label} is live.`));
  const canary = el(
    "button",
    {
      type: "button",
      disabled: v.status === "live" || v.rolled_back,
      "aria-label": `Canary ${v.label}`,
    },
    v.status === "canary" ? "Set share" : "Canary",
  );
  canary.addEventListener("click", () => {
    const share = Number(ui.share.value);
    const body = { share, force: ui.force.checked };
    act(`/v1/config/versions/${v.number}/canary`, body, `${v.label} on canary at ${share}%.`);
  });
  const actions = [promote, " ", canary];
  if (v.status === "canary") {
    const stop = el("button", { type: "button", "aria-label": `Roll back canary ${v.label}` }, "Stop canary");
    stop.addEventListener("click", () =>
      act("/v1/config/rollback", { canary: true, reason: "stopped from the console" }, `Canary ${v.label} rolled back.`),
    );
    actions.push(" ", stop);
  }
  return el(
    "tr",
    { dataset: { version: v.number, status: v.status } },
    el("th", { scope: "row" }, v.label),
    el("td", {}, el("span", { className: `badge version-${v.status}` }, statusText(v, pointer))),
    el("td", {}, when(v.created_at_ms)),
    el("td", {}, v.author),
    el("td", { className: "message" }, v.message),
    el("td", {}, el("code", { title: v.content_hash }, v.content_hash)),
    el("td", {}, v.git_commit ? el("code", { title: v.git_commit }, v.git_commit.slice(0, 12)) : ""),
    el("td", {}, gatesText(v.gates)),
    el("td", { className: "actions" }, ...actions),
  );
}

async function act(path, body, done) {
  view.busy = true;
  for (const button of ui.main.querySelectorAll("button")) button.disabled = true;
  try {
    await view.api.post(path, body);
    note(done);
  } catch (err) {
    if (err.status === 403) return refused(err.message);
    note(err.message, true);
  } finally {
    view.busy = false;
    view.signature = ""; // redraw: the buttons were disabled
    for (const button of ui.main.querySelectorAll("button")) button.disabled = false;
    await loadAll();
  }
}

function rollback() {
  const to = view.pointer?.previous_live;
  if (!to) return;
  act("/v1/config/rollback", { reason: "rolled back from the console" }, `Rolled back: v${to} is live.`);
}

// ---------- canary ----------

async function loadCanary() {
  let status;
  try {
    status = await view.api.get("/v1/config/canary");
  } catch (err) {
    if (err.status === 403) return refused(err.message);
    ui.canarySummary.textContent = `Could not load the canary's status: ${err.message}`;
    return;
  }
  const live = status.live ? `v${status.live} is live` : "No live version";
  ui.canarySummary.textContent = status.canary
    ? `${live}; v${status.canary} on canary at ${status.canary_share}% of new sessions since ${when(status.since_ms)}.`
    : `${live}; no canary running.`;
  const arms = Object.entries(status.arms);
  ui.arms.hidden = arms.length === 0;
  ui.armRows.replaceChildren(
    ...arms.map(([arm, s]) =>
      el(
        "tr",
        { dataset: { arm } },
        el("th", { scope: "row" }, arm),
        el("td", {}, `v${arm === "canary" ? status.canary : status.live}`),
        el("td", {}, s.turns),
        el("td", {}, `${s.failed} (${percent(s.failure_rate)})`),
        el("td", {}, `${s.fallback} (${percent(s.fallback_rate)})`),
        el("td", {}, `${s.handoff} (${percent(s.handoff_rate)})`),
        el("td", {}, s.latency_p95_ms === null ? "—" : `${s.latency_p95_ms} ms`),
      ),
    ),
  );
  const last = status.last_rollback;
  ui.banner.hidden = !(last && last.automatic);
  if (last && last.automatic) {
    ui.banner.textContent = `Canary ${last.version ?? ""} was rolled back automatically at ${when(last.at_ms)}: ${last.reason}`;
  }
  ui.decisions.replaceChildren(
    ...status.decisions.map((e) =>
      el(
        "li",
        { dataset: { kind: e.kind } },
        el("time", { dateTime: new Date(e.at_ms).toISOString() }, when(e.at_ms)),
        " ",
        el("span", { className: "kind" }, e.kind),
        " ",
        decisionText(e),
      ),
    ),
  );
}

function decisionText(e) {
  const d = e.data ?? {};
  const by = d.actor ? ` by ${d.actor}` : "";
  switch (e.kind) {
    case "config.promoted":
      return `${d.version} live${d.forced ? " (forced, no passed gate)" : ""}${by}`;
    case "config.rolled_back":
      return `${d.rolled_back} rolled back to ${d.version}${by}: ${d.reason ?? ""}`;
    case "config.canary_started":
      return `${d.version} on canary at ${d.share}%${by}`;
    case "config.canary_advanced":
      return `${d.version} ${d.from_share}% → ${d.share}%: ${d.reason ?? ""}`;
    case "config.canary_rolled_back":
      return `${d.version} rolled back${by}: ${d.reason ?? ""}`;
    default:
      return JSON.stringify(d);
  }
}

// ---------- diff ----------

function fillDiffChoices(items) {
  for (const [select, pick] of [
    [ui.diffA, 1],
    [ui.diffB, 0],
  ]) {
    const chosen = select.value;
    select.replaceChildren(...items.map((v) => el("option", { value: v.number }, `${v.label} (${v.status})`)));
    if (chosen && items.some((v) => String(v.number) === chosen)) select.value = chosen;
    else if (items[pick]) select.value = String(items[pick].number);
  }
}

async function showDiff() {
  const a = ui.diffA.value;
  const b = ui.diffB.value;
  if (!a || !b) return;
  let answer;
  try {
    answer = await view.api.get("/v1/config/diff", { a, b });
  } catch (err) {
    if (err.status === 403) return refused(err.message);
    ui.diffNote.textContent = `Could not diff: ${err.message}`;
    ui.diff.hidden = true;
    return;
  }
  ui.diffBefore.textContent = answer.a;
  ui.diffAfter.textContent = answer.b;
  ui.diffNote.textContent = answer.rows.length
    ? `${answer.rows.length} key${answer.rows.length === 1 ? "" : "s"} differ from ${answer.a} to ${answer.b}.`
    : `${answer.a} and ${answer.b} resolve to the same configuration.`;
  ui.diff.hidden = answer.rows.length === 0;
  ui.diffRows.replaceChildren(
    ...answer.rows.map((r) =>
      el(
        "tr",
        { dataset: { key: r.key, change: r.change } },
        el("td", {}, el("code", {}, r.key)),
        el("td", {}, r.change),
        el("td", {}, valueText(r.before)),
        el("td", {}, valueText(r.after)),
      ),
    ),
  );
}

// ---------- go ----------

const key = currentKey();
if (key) start(key);
else askForKey(ui.keyForm, "Open the link with ?key=, or paste an admin API key here.", start);
