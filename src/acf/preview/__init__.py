"""Preview by replay (DESIGN §17): what a configuration version would have done to real
past sessions, and the scenario gate of a version.

A tool around the product, like ``acf.replay``: it reads the tenant's recorded sessions,
replays their inbound messages through a version's agents in a sandbox (its own temporary
SQLite store on a virtual clock, recorded tool results and model completions served back,
a recording channel) and diffs replies, tool calls and outcome categories against what
happened. The runtime never imports it.
"""
