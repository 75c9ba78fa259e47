"""The ``agent_service`` pipeline kind: delegate a turn to an external agent service over
HTTP + SSE (DESIGN §16, seed 004). ``protocol`` is the wire format, ``client`` speaks it."""
