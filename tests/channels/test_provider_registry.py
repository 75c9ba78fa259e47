"""Every provider the composition root builds senders for has its webhook routes in the
HTTP application, in the same order, under ``/v1/channels/<name>`` and tagged with it."""

from acf.channels.registry import PROVIDERS
from acf.channels.routers import ROUTERS


def test_each_provider_has_its_routes_in_the_same_order() -> None:
    assert [router.prefix for router in ROUTERS] == [
        f"/v1/channels/{provider.name}" for provider in PROVIDERS
    ]
    assert [router.tags for router in ROUTERS] == [[provider.name] for provider in PROVIDERS]
