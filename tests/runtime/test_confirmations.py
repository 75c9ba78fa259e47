"""A confirmed action runs under the idempotency key fixed when it was requested (DESIGN §3
invariant 10), not one computed by the later turn that confirms it."""

from pathlib import Path

from acf.domain.tools import DedupeScope, SideEffectPolicy, ToolSpec
from acf.ports.ledger import LedgerQuery
from acf.testing.harness import TENANT, Harness, HarnessOptions
from acf.testing.pipeline import Script
from acf.testing.tools import ToolBackend

BOOK = ToolSpec(
    "book",
    SideEffectPolicy.COMPENSATABLE,
    compensation="unbook",
    business_key="{slot}",
    dedupe_scope=DedupeScope.GROUP,
)


async def test_the_confirmed_call_uses_the_key_of_the_request(tmp_path: Path) -> None:
    script = Script(
        steps=(
            {
                "confirm": "book",
                "args": {"slot": "fri"},
                "prompt": "Book Friday?",
                "when_text": "book",
            },
        ),
        reply="echo: {text} [{confirmation}]",
    )
    options = HarnessOptions(script=script, tools=(ToolBackend(BOOK),))
    async with Harness(tmp_path, options) as h:
        await h.send("alice", "Please book Friday.")
        await h.run_until_idle()
        session = await h.store.sessions.find_open(TENANT, h.key("alice"))
        assert session is not None
        pending = session.state["meta"]["confirmation"]
        first_group = (await h.store.turns.list_turns(TENANT, session.session_id))[0].group_id
        assert pending["idempotency_key"].endswith(f":group:{first_group}")
        await h.advance(5_000)
        await h.send("alice", "yes")
        await h.run_until_idle()
        assert h.replies("alice")[-1] == "echo: yes [yes:ok]"
        (entry,) = await h.store.ledger.query(TENANT, LedgerQuery(tool="book"))
        assert entry.idempotency_key == pending["idempotency_key"]
        assert entry.group_id != first_group  # run by the confirming turn, under the old key
