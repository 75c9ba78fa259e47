"""How a tenant's configuration versions are applied (DESIGN §17): the state upcaster a
``next_turn`` version declares for sessions it moves, and the canary's policy.

```yaml
apply: next_turn
state_upcaster: {rename: {cart: basket}, set: {schema: 2}, drop: [legacy_flag]}
canary: {failure_margin: 0.02, min_turns: 50, bake_s: 600, steps: [10, 25, 50, 100]}
```"""

from collections.abc import Mapping
from typing import Any

from pydantic import Field, model_validator

from acf.config.tools import ConfigModel
from acf.domain.canary import CanaryPolicy


class StateUpcaster(ConfigModel):
    """Moves a session's state (its top-level keys) to the shape a new version expects:
    ``rename`` first, then ``drop``, then ``set``. Pure; a key absent from the state is
    left alone (a rename of a missing key does nothing)."""

    rename: dict[str, str] = Field(default_factory=dict)
    set: dict[str, Any] = Field(default_factory=dict)
    drop: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _distinct_targets(self) -> "StateUpcaster":
        targets = list(self.rename.values())
        twice = sorted({t for t in targets if targets.count(t) > 1})
        if twice:
            raise ValueError(f"rename: several keys renamed to {twice}")
        return self

    def upcast(self, state: Mapping[str, Any]) -> dict[str, Any]:
        """The state moved: a new dict, ``state`` untouched."""
        out = {k: v for k, v in state.items() if k not in self.rename}
        for old, new in self.rename.items():
            if old in state:
                out[new] = state[old]
        for key in self.drop:
            out.pop(key, None)
        out.update(self.set)
        return out

    @property
    def empty(self) -> bool:
        return not (self.rename or self.set or self.drop)


class CanaryFields(ConfigModel):
    """The canary's judgement (``acf.domain.canary.CanaryPolicy``) and how often it is
    checked. Margins are absolute rates (0.02: two percentage points)."""

    failure_margin: float = Field(default=0.02, ge=0, le=1)
    fallback_margin: float = Field(default=0.05, ge=0, le=1)
    handoff_margin: float = Field(default=0.05, ge=0, le=1)
    latency_ratio: float = Field(default=1.5, ge=1)
    min_turns: int = Field(default=50, ge=1)
    bake_s: int = Field(default=600, ge=0)
    steps: list[int] = Field(default_factory=lambda: [10, 25, 50, 100], min_length=1)
    """Shares in percent, increasing, within 1..100; after the last one's bake: promote."""
    check_every_s: int = Field(default=30, ge=1, le=60)
    """How often the canary is judged (at most 60 s: a breach is acted on within 2 minutes)."""

    @model_validator(mode="after")
    def _steps(self) -> "CanaryFields":
        if any(not 0 < s <= 100 for s in self.steps):
            raise ValueError("steps: expected shares in 1..100")
        if any(a >= b for a, b in zip(self.steps, self.steps[1:], strict=False)):
            raise ValueError("steps: expected increasing shares")
        return self

    def policy(self) -> CanaryPolicy:
        """The domain's policy (everything but ``check_every_s``)."""
        return CanaryPolicy(
            failure_margin=self.failure_margin,
            fallback_margin=self.fallback_margin,
            handoff_margin=self.handoff_margin,
            latency_ratio=self.latency_ratio,
            min_turns=self.min_turns,
            bake_s=self.bake_s,
            steps=tuple(self.steps),
        )
