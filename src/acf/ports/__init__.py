"""Ports: the interfaces the service layer depends on, one role per module.

Each port is a ``typing.Protocol`` whose docstring states its guarantees; every adapter
passes the same contract suite (``tests/contract``). Every method and every write takes
the tenant: no port can read or write across tenants.
"""
