"""Typed errors of the domain. Each says what was wrong in words a caller can show."""


class AcfError(Exception):
    """Base of every error acf raises on purpose."""


class InvalidValue(AcfError, ValueError):
    """A value does not satisfy the model's rules (the message names the field)."""


class StateContractError(AcfError):
    """Session state does not satisfy the state contract."""


class VersionConflict(AcfError):
    """An optimistic write lost: the stored version is not the one the writer read."""


class Conflict(AcfError):
    """A guarded write found the world changed (fence, phase, sequence or uniqueness).

    Raised by a unit of work when one of its guards fails; nothing of the unit is committed.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class FieldProblem:
    """One thing wrong with an input: where (a dotted path) and what was expected."""

    __slots__ = ("message", "path")

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message

    def __repr__(self) -> str:
        return f"FieldProblem({self.path!r}, {self.message!r})"

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class IngressError(AcfError):
    """An inbound message was refused; nothing was stored."""


class InvalidMessage(IngressError):
    """The message is malformed: each problem names the field and what was expected."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        self.problems = problems
        super().__init__("invalid message: " + "; ".join(str(p) for p in problems))


class MessageTooLarge(InvalidMessage):
    """The message's text or media exceed the limits."""


class UnknownTenant(IngressError):
    def __init__(self, tenant: str) -> None:
        self.tenant = tenant
        super().__init__(f"unknown tenant {tenant!r}")


class UnknownAgent(IngressError):
    def __init__(self, tenant: str, agent: str) -> None:
        self.tenant = tenant
        self.agent = agent
        super().__init__(f"tenant {tenant!r} has no agent {agent!r}")
