// The web chat: a customer talking to one agent through acf's web channel.
//
// Messages go out with POST /v1/messages (one at a time, in order); typing signals with
// POST /v1/typing. Replies come in from the session's event stream: a reply bubble for each
// delivered segment (`response.delivered`), a progress line while a tool runs (acf's own,
// `tool.execution_*`, or an agent service's, `turn.progress` named `tool.started` /
// `tool.finished`), and "typing…" while a turn runs (an agent service's thoughts keep it
// up). Output of a superseded turn is never delivered, so it never shows. While a turn
// writes its reply, its drafts (`reply.draft`, asked for with `?drafts=true`) grow a draft
// bubble; the reply's first delivered part takes its place, and a withdrawal
// (`reply.draft_withdrawn`) or the turn's failure or supersede removes it. Events this page
// does not know are ignored. When the stream cannot be held (a proxy that cuts or buffers
// it), the page polls the session's events instead (sse.js) and only the drafts are
// missed: the replies still come, a little later.

import { Api, askForKey, currentKey, el, forgetKey, randomId, sleep } from "./api.js";
import { DraftTexts } from "./drafts.js";
import { openEventStream, showStreamStatus } from "./sse.js";
import { TypingSignals } from "./typing.js";

const CUSTOMER_STORAGE = "acf.chat.customer";

const $ = (id) => document.getElementById(id);
const ui = {
  keyForm: $("key-form"),
  conversation: $("conversation"),
  messages: $("messages"),
  activity: $("activity"),
  notice: $("notice"),
  composer: $("composer"),
  input: $("composer-input"),
  connection: $("connection"),
  customerId: $("customer-id"),
  newConversation: $("new-conversation"),
  agentName: $("agent-name"),
};

const chat = {
  api: null,
  agent: new URLSearchParams(window.location.search).get("agent") || "support",
  customer: null,
  sessionId: null,
  stream: null,
  outgoing: Promise.resolve(), // messages are posted one after another, in order
  incoming: Promise.resolve(), // events are handled one after another, in order
  customerBubbles: new Map(), // client message id -> bubble
  deliveredOutbox: new Set(),
  messageTexts: new Map(), // message id -> text, for messages sent elsewhere (history)
  activity: new Map(), // key -> {text, turnId}
  drafts: new DraftTexts(),
  draftBubbles: new Map(), // turn id -> its draft bubble
  typing: new TypingSignals((active) => postTyping(active)),
};

// ---------- start ----------

function start(key) {
  chat.api = new Api(key, () => keyRefused());
  chat.customer = localStorage.getItem(CUSTOMER_STORAGE);
  if (!chat.customer) newCustomer();
  ui.customerId.textContent = chat.customer;
  ui.agentName.textContent = chat.agent;
  ui.conversation.hidden = false;
  ui.input.focus();
  restore().catch((err) => showNotice(`Could not load the conversation: ${err.message}`));
}

function newCustomer() {
  chat.customer = randomId("web-");
  localStorage.setItem(CUSTOMER_STORAGE, chat.customer);
}

function keyRefused() {
  forgetKey();
  chat.stream?.close();
  ui.conversation.hidden = true;
  askForKey(ui.keyForm, "acf refused the key (unknown or revoked). Enter another one.", () =>
    window.location.reload(),
  );
}

/** Show the customer's open session with this agent, if any, and follow it. */
async function restore() {
  const { items } = await chat.api.get("/v1/sessions", {
    customer: chat.customer,
    status: "open",
    limit: 20,
  });
  const session = items.find((s) => s.agent === chat.agent && s.channel === "web");
  if (!session) {
    showEmpty();
    return;
  }
  await learnTexts(session.session_id);
  follow(session.session_id);
}

/** The texts of the session's messages (the event stream carries their ids only). */
async function learnTexts(sessionId) {
  const detail = await chat.api.get(`/v1/sessions/${encodeURIComponent(sessionId)}`);
  for (const m of detail.messages) {
    chat.messageTexts.set(m.message_id, m.text ?? (m.button_id ? `[${m.button_id}]` : ""));
  }
}

// ---------- the session's event stream ----------

function follow(sessionId) {
  if (!sessionId || sessionId === chat.sessionId) return;
  chat.stream?.close();
  chat.sessionId = sessionId;
  document.body.dataset.sessionId = sessionId;
  const path = `/v1/sessions/${encodeURIComponent(sessionId)}`;
  chat.stream = openEventStream({
    url: `${path}/stream?drafts=true`,
    pollUrl: `${path}/events`,
    key: chat.api.key,
    onEvent: (event) => {
      chat.incoming = chat.incoming.then(() => onEvent(event)).catch((err) => console.error(err));
    },
    onStatus: showConnection,
  });
}

function showConnection(status, detail) {
  showStreamStatus(ui.connection, status, detail, "connected");
  if (status === "unauthorized") keyRefused();
}

async function onEvent(event) {
  const data = event.data ?? {};
  switch (event.kind) {
    case "message.received":
      await messageReceived(data);
      break;
    case "response.delivered":
      replyDelivered(event, data);
      break;
    case "response.failed":
      dropDraft(data.turn_id ?? event.turn_id);
      addSystemNote("A reply could not be delivered.");
      break;
    case "reply.draft":
      showDraft(event.turn_id, data);
      break;
    case "reply.draft_withdrawn":
      if (chat.drafts.withdraw(event.turn_id, data.attempt)) dropDraft(event.turn_id);
      break;
    case "reply.cut":
      dropDraft(event.turn_id);
      break;
    case "turn.started":
      if (chat.drafts.started(event.turn_id, data.attempt)) dropDraft(event.turn_id);
      setActivity(`turn:${event.turn_id}`, `${chat.agent} is typing…`, event.turn_id);
      break;
    case "turn.held":
      // The reply is ready and waits while the customer types: the agent is not typing.
      clearTurnActivity(event.turn_id);
      break;
    case "turn.committed":
      // The draft stays until the reply's first part is delivered and takes its place.
      chat.drafts.close(event.turn_id);
      if (!data.replies) dropDraft(event.turn_id);
      clearTurnActivity(event.turn_id);
      break;
    case "turn.failed":
      chat.drafts.close(event.turn_id);
      dropDraft(event.turn_id);
      clearTurnActivity(event.turn_id);
      break;
    case "turn.superseded":
      // Its output is discarded; the restart (over all the messages) is still typing.
      chat.drafts.close(event.turn_id);
      dropDraft(event.turn_id);
      clearTurnActivity(event.turn_id);
      if (data.restart_turn_id) {
        setActivity(`turn:${data.restart_turn_id}`, `${chat.agent} is typing…`, data.restart_turn_id);
      }
      break;
    case "tool.execution_started":
      setActivity(
        `tool:${data.execution_id}`,
        data.status_text || `Working on it (${data.tool})…`,
        event.turn_id,
      );
      break;
    case "tool.execution_completed":
    case "tool.execution_failed":
    case "tool.in_doubt":
      clearActivity(`tool:${data.execution_id}`);
      break;
    case "confirmation.resolved":
    case "confirmation.expired":
      disableButtonsOf(data.confirmation_id);
      break;
    case "turn.progress":
      showProgress(event.turn_id, data);
      break;
    default:
      break; // an event this page does not show
  }
}

/** A pipeline's progress (`turn.progress`, by name): what the customer may see of it. */
function showProgress(turnId, data) {
  switch (data.name) {
    case "tool.started": // an agent service's tool: outside acf's ledger, shown alike
      setActivity(
        `tool:${turnId}/${data.tool}`,
        data.status_text || `Working on it (${data.tool})…`,
        turnId,
      );
      break;
    case "tool.finished":
      clearActivity(`tool:${turnId}/${data.tool}`);
      break;
    case "agent_service.thought": // the agent is thinking: "typing…", never the thought
      setActivity(`turn:${turnId}`, `${chat.agent} is typing…`, turnId);
      break;
    default:
      break; // routing decisions, model usage...: for the console, not the customer
  }
}

/** The web chat's own message id inside acf's dedupe id (`web|<digest>|<client id>`). */
function clientIdOf(providerId) {
  return String(providerId ?? "").split("|").slice(2).join("|");
}

async function messageReceived(data) {
  const clientId = clientIdOf(data.provider_message_id);
  const known = chat.customerBubbles.get(clientId);
  if (known) {
    known.dataset.messageId = data.message_id;
    return;
  }
  // Sent before this page was opened (or from another tab): show it from its stored text.
  if (!chat.messageTexts.has(data.message_id)) {
    await learnTexts(chat.sessionId).catch(() => {});
  }
  const text = chat.messageTexts.get(data.message_id);
  if (text === undefined) return;
  const bubble = addCustomerBubble(clientId, text);
  bubble.dataset.messageId = data.message_id;
  setBubbleState(bubble, "sent");
}

function replyDelivered(event, data) {
  if (chat.deliveredOutbox.has(data.outbox_id)) return;
  chat.deliveredOutbox.add(data.outbox_id);
  const turnId = data.turn_id ?? event.turn_id ?? "";
  // Buttons answer the agent's latest reply: a later turn's reply retires earlier ones.
  for (const group of ui.messages.querySelectorAll(".reply-buttons")) {
    if (group.closest("li").dataset.turnId !== turnId) disableGroup(group);
  }
  const bubble = el(
    "li",
    {
      className: "bubble from-agent",
      dataset: { outboxId: data.outbox_id, turnId },
    },
    el("span", { className: "visually-hidden" }, `${chat.agent}: `),
    el("p", { className: "text" }, data.text ?? ""),
  );
  const buttons = Array.isArray(data.buttons) ? data.buttons : [];
  if (buttons.length) bubble.append(buttonGroup(buttons));
  const draft = chat.draftBubbles.get(turnId);
  if (draft) {
    chat.draftBubbles.delete(turnId);
    draft.replaceWith(bubble); // the reply takes the draft's place
  } else {
    append(bubble);
  }
}

// ---------- drafts: the reply while it is being written ----------

function showDraft(turnId, data) {
  if (!turnId) return;
  const text = chat.drafts.apply(turnId, data);
  if (text === null) return;
  let bubble = chat.draftBubbles.get(turnId);
  if (!bubble) {
    // Hidden from screen readers: the log is a live region, and a text changing ten times
    // a second would be read out over and over; the reply is announced when it comes.
    bubble = el(
      "li",
      { className: "bubble draft", dataset: { turnId }, "aria-hidden": "true" },
      el("p", { className: "text" }, ""),
    );
    chat.draftBubbles.set(turnId, bubble);
    append(bubble);
  }
  const atBottom =
    ui.messages.scrollHeight - ui.messages.scrollTop - ui.messages.clientHeight < 80;
  bubble.querySelector(".text").textContent = text;
  if (atBottom) ui.messages.scrollTop = ui.messages.scrollHeight;
}

function dropDraft(turnId) {
  const bubble = chat.draftBubbles.get(turnId);
  if (!bubble) return;
  chat.draftBubbles.delete(turnId);
  bubble.remove();
}

// ---------- bubbles ----------

function showEmpty() {
  if (ui.messages.children.length) return;
  append(
    el("li", { className: "empty-chat", id: "empty-chat" }, `Say hello to ${chat.agent} to begin.`),
  );
}

function append(node) {
  $("empty-chat")?.remove();
  const atBottom =
    ui.messages.scrollHeight - ui.messages.scrollTop - ui.messages.clientHeight < 80;
  ui.messages.append(node);
  if (atBottom || node.classList.contains("from-customer")) {
    ui.messages.scrollTop = ui.messages.scrollHeight;
  }
}

function addCustomerBubble(clientId, text) {
  const bubble = el(
    "li",
    { className: "bubble from-customer", dataset: { clientId } },
    el("span", { className: "visually-hidden" }, "You: "),
    el("p", { className: "text" }, text),
    el("span", { className: "meta" }),
  );
  chat.customerBubbles.set(clientId, bubble);
  append(bubble);
  return bubble;
}

function setBubbleState(bubble, state, detail = "", retry = null) {
  bubble.dataset.state = state;
  bubble.classList.toggle("failed", state === "failed");
  const meta = bubble.querySelector(".meta");
  const labels = { sending: "sending…", waiting: "waiting…", sent: "sent", failed: "not sent" };
  meta.replaceChildren(labels[state] + (detail ? `: ${detail}` : ""));
  if (retry) {
    meta.append(el("button", { type: "button", onclick: retry }, "Retry"));
  }
}

function addSystemNote(text) {
  append(el("li", { className: "bubble system" }, text));
}

function buttonGroup(buttons) {
  const group = el("div", { className: "reply-buttons", role: "group", "aria-label": "Reply options" });
  for (const b of buttons) {
    const button = el("button", { type: "button", dataset: { buttonId: b.id } }, b.title);
    button.addEventListener("click", () => {
      disableGroup(group);
      button.setAttribute("aria-pressed", "true");
      send({ text: b.title, button: { id: b.id, title: b.title } });
    });
    group.append(button);
  }
  return group;
}

function disableGroup(group) {
  for (const button of group.querySelectorAll("button")) button.disabled = true;
}

function disableButtonsOf(confirmationId) {
  if (!confirmationId) return;
  for (const button of ui.messages.querySelectorAll(".reply-buttons button")) {
    if (button.dataset.buttonId.includes(confirmationId)) disableGroup(button.parentElement);
  }
}

// ---------- activity: the agent typing, tools running ----------

function setActivity(key, text, turnId) {
  chat.activity.set(key, { text, turnId });
  renderActivity();
}

function clearActivity(key) {
  if (chat.activity.delete(key)) renderActivity();
}

function clearTurnActivity(turnId) {
  for (const [key, item] of chat.activity) {
    if (item.turnId === turnId) chat.activity.delete(key);
  }
  renderActivity();
}

function renderActivity() {
  ui.activity.replaceChildren(
    ...[...chat.activity].map(([key, item]) =>
      el("li", { dataset: { activity: key.split(":")[0] } }, item.text),
    ),
  );
}

// ---------- sending ----------

function showNotice(text) {
  ui.notice.textContent = text;
  ui.notice.hidden = false;
}

function hideNotice() {
  ui.notice.hidden = true;
}

function send({ text, button }) {
  const clientId = randomId("m-");
  const bubble = addCustomerBubble(clientId, text);
  setBubbleState(bubble, "sending");
  const typingWasActive = chat.typing.stop();
  chat.outgoing = chat.outgoing.then(async () => {
    await post(clientId, text, button, bubble);
    if (typingWasActive) postTyping(false);
  });
}

async function post(clientId, text, button, bubble) {
  const body = {
    agent: chat.agent,
    customer: chat.customer,
    client_message_id: clientId, // the same id on a retry: acf stores the message once
    sent_at_ms: Date.now(),
  };
  if (text) body.text = text;
  if (button) body.button = button;
  for (;;) {
    try {
      const accepted = await chat.api.post("/v1/messages", body);
      setBubbleState(bubble, "sent");
      bubble.dataset.messageId = accepted.message_id;
      hideNotice();
      follow(accepted.session_id);
      return;
    } catch (err) {
      if (err.status === 429) {
        const wait = err.retryAfterS ?? 1;
        setBubbleState(bubble, "waiting");
        showNotice(`Too many messages right now; sending again in ${wait} s…`);
        await sleep(wait * 1000);
        continue;
      }
      if (err.status === 401) return; // the key form takes over
      setBubbleState(bubble, "failed", err.message, () => {
        setBubbleState(bubble, "sending");
        chat.outgoing = chat.outgoing.then(() => post(clientId, text, button, bubble));
      });
      return;
    }
  }
}

// ---------- typing signals ----------

function postTyping(active) {
  chat.api
    .post("/v1/typing", { agent: chat.agent, customer: chat.customer, active })
    .then((answer) => follow(answer?.session_id))
    .catch(() => {}); // a typing signal is a hint; losing one is harmless
}

// ---------- wiring ----------

ui.input.addEventListener("input", () => chat.typing.keystroke(Boolean(ui.input.value.trim())));
ui.composer.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = ui.input.value.trim();
  if (!text) return;
  ui.input.value = "";
  send({ text });
});
ui.newConversation.addEventListener("click", () => {
  newCustomer();
  window.location.reload();
});

const key = currentKey();
if (key) start(key);
else askForKey(ui.keyForm, "Open the link that acf serve printed, or paste an API key here.", start);
