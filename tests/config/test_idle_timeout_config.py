"""``idle_timeout_s`` per channel from the configuration file: layered like the other channel
policy fields (acf's default 24 h → tenant → agent), settable without ``mode`` and on
channels that do not accumulate; the idle close reads it, and its scan looks as far back as
the shortest one."""

from pathlib import Path

import httpx
import yaml

from acf.bootstrap import ToolBackends, build_agents
from acf.config.load import load_config
from acf.demo import demo_tools
from acf.domain.channels import Channel
from acf.ports.checkpoints import NoCheckpoints
from acf.service.idle_close import IdleCloser, IdleCloseSettings, idle_floor_ms
from acf.service.lease_keeper import LeaseSettings
from acf.service.runtime_parts import RuntimeParts
from acf.service.tasks import TaskSet
from acf.testing import VirtualClock

RULES = {
    "fallback": "?",
    "rules": [{"name": "hi", "lane": "info", "match": {"keywords": ["hi"]}, "reply": "hello"}],
}


def test_idle_timeouts_per_channel_from_the_file(tmp_path: Path) -> None:
    body = {
        "version": 1,
        "tenants": {
            "acme": {
                "channels": {"web": {"idle_timeout_s": 3600}, "sms": {"idle_timeout_s": 600}},
                "agents": {
                    "support": {
                        "pipeline": {"kind": "rules", "rules": RULES},
                        "channels": {
                            "sms": {"idle_timeout_s": 7200},
                            "email": {"idle_timeout_s": 1800},
                        },
                    }
                },
            }
        },
    }
    path = tmp_path / "acf.yaml"
    path.write_text(yaml.safe_dump(body), "utf-8")
    agents = build_agents(load_config(path), ToolBackends(httpx.AsyncClient(), demo_tools()))
    parts = RuntimeParts(
        store=None,  # type: ignore[arg-type]  # the timeouts read no store
        clock=VirtualClock(),
        agents=agents,
        tasks=TaskSet(),
        checkpoints=NoCheckpoints(),
        lease=LeaseSettings(),
        holder="test",
        poke_relay=lambda tenant, session_id: None,
    )
    closer = IdleCloser(parts, IdleCloseSettings(), _never, lambda tenant, session_id: False)
    timeouts = {c: closer.timeout_ms("acme", "support", c) // 1000 for c in Channel}
    assert timeouts[Channel.WEB] == 3600  # the tenant's
    assert timeouts[Channel.SMS] == 7200  # the agent's, over the tenant's
    assert timeouts[Channel.EMAIL] == 1800  # on a channel that does not accumulate
    assert timeouts[Channel.WHATSAPP] == 86_400  # acf's default
    assert closer.timeout_ms("acme", "nobody", Channel.WEB) == 86_400_000  # not served
    # The scan reaches back to the shortest timeout any served channel has.
    assert idle_floor_ms(agents) == 1800 * 1000


async def _never(tenant: str, session_id: str) -> None:
    raise AssertionError("no wake-up expected")
