"""A complete `python` pipeline: your own model loop, with acf's guarantees around it.

It answers with an OpenAI-compatible model called through the `openai` SDK and lets the
model look orders up with the agent's `lookup_order` tool. What acf adds, line by line:

- `ctx.step(...)`: the completion is stored with the turn; a recovery after a crash reuses
  it instead of paying for it again, and a supersede (the customer wrote again) cancels it;
- `ctx.draft(...)`: the answer streams to the web chat while it is written (never stored,
  never sent to other channels);
- `ctx.tools.call(...)`: the tool runs through the gateway (the agent's allowlist, its
  side-effect policy, the ledger), never directly.

Served by `acf serve --config examples/python-agent/acf.yaml` (this folder is found beside
the configuration file: no PYTHONPATH). See docs/agents.md.
"""

import json
from typing import Any

from openai import AsyncOpenAI

from acf import PipelineResult, TurnContext

LOOKUP = {
    "type": "function",
    "function": {
        "name": "lookup_order",
        "description": "Look up an order by its number (digits).",
        "parameters": {
            "type": "object",
            "properties": {"order_id": {"type": "string"}},
            "required": ["order_id"],
        },
    },
}


class OrderDesk:
    name = "order-desk"
    version = "1"

    def __init__(self, base_url: str, model: str, api_key: str = "unused") -> None:
        self.model = model
        self.client = AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=2)

    async def run(self, ctx: TurnContext) -> PipelineResult:
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": "You are a shop's order desk. Be brief."},
            *({"role": "assistant", "content": r["text"]} for r in ctx.replies_history),
            *({"role": "user", "content": m.text} for m in ctx.messages if m.text),
        ]
        for _ in range(3):  # at most two tool rounds, then an answer
            # Keyed by the request: the same request (a recovery) reuses the stored answer.
            answer = await ctx.step("completion", lambda m: self._complete(m, ctx), messages)
            if not answer["tool_calls"]:
                return PipelineResult.reply(answer["text"] or "Sorry, I have no answer.")
            messages.append(
                {"role": "assistant", "content": None, "tool_calls": answer["tool_calls"]}
            )
            for call in answer["tool_calls"]:
                args = json.loads(call["function"]["arguments"] or "{}")
                result = await ctx.tools.call(call["function"]["name"], args)
                content = {"ok": result.ok, "value": result.value, "error": result.error}
                messages.append(
                    {"role": "tool", "tool_call_id": call["id"], "content": json.dumps(content)}
                )
        return PipelineResult.reply("Sorry, I could not finish that; a person will follow up.")

    async def _complete(self, messages: list[dict[str, Any]], ctx: TurnContext) -> Any:
        """One streamed completion; its result is plain JSON (a step stores it)."""
        text, calls = "", {}  # tool calls arrive in fragments, by index
        stream = await self.client.chat.completions.create(
            model=self.model, messages=messages, tools=[LOOKUP], stream=True
        )
        async with stream:
            async for chunk in stream:
                if not chunk.choices:
                    continue
                delta = chunk.choices[0].delta
                if delta.content:
                    text += delta.content
                    await ctx.draft(text)  # the whole answer so far
                for part in delta.tool_calls or ():
                    call = calls.setdefault(part.index, {"id": "", "name": "", "arguments": ""})
                    call["id"] = part.id or call["id"]
                    if part.function is not None:
                        call["name"] += part.function.name or ""
                        call["arguments"] += part.function.arguments or ""
        tool_calls = [
            {
                "id": c["id"],
                "type": "function",
                "function": {"name": c["name"], "arguments": c["arguments"]},
            }
            for _, c in sorted(calls.items())
        ]
        return {"text": text, "tool_calls": tool_calls}


def build(base_url: str, model: str, api_key: str = "unused") -> OrderDesk:
    """The factory `acf.yaml` names: called with the pipeline's `options`."""
    return OrderDesk(base_url, model, api_key)
