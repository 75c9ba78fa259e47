"""The messaging providers acf speaks to, one package each (``whatsapp``, ``twilio``,
``telegram``, ``email``), holding everything about that provider:

- ``config.py``: its fields in the configuration file (``tenants.<name>.<provider>``).
  Credentials are secret references (``${NAME}``), read from the environment when used;
  base URLs are per tenant so tests reach local fake providers;
- ``payload.py`` and ``inbound.py``: its webhooks' payloads parsed into normalised messages
  and delivery statuses, and their signatures checked;
- ``outbound.py``: its ``ChannelSender`` (replies out through its API);
- ``routes.py``: its webhook routes (``/v1/channels/<provider>/...``);
- ``provider.py``: what the composition root needs to build its senders from the
  configuration (``acf.channels.provider.ChannelProvider``).

``registry`` lists the providers for the composition root, ``routers`` their webhook routes
for the HTTP application; the configuration model imports each ``config.py``. The core
(domain, ports, service) never imports a provider. Pieces several providers share sit
beside them: ``form`` (form bodies), ``payload_types`` (pydantic types of payloads),
``account`` (what every account names); the answers of provider APIs are read by
``acf.adapters.channels.provider_http``, shared with the web chat's delivery webhook.

This package and each provider's ``__init__`` import nothing, so that the configuration
model can import a ``config.py`` without the rest of its provider.
"""
