"""The rules a discussion is created with: human turns, termination, parallel rounds, approval
and consensus settings (docs/protocols.md). Shared by the create body, config and session."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class HumanTurnPolicy(StrEnum):
    """What happens when a person's turn passes its deadline."""

    SKIP = "skip"
    PAUSE = "pause"
    PROXY = "proxy"


class DecisionRule(StrEnum):
    MAJORITY = "majority"
    SUPERMAJORITY = "supermajority"
    UNANIMOUS = "unanimous"


class Vote(StrEnum):
    YES = "yes"
    NO = "no"
    ABSTAIN = "abstain"


class Decision(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    NO_CONSENSUS = "no_consensus"


class ConsensusRules(BaseModel):
    # Numbers and booleans are strict (JSON `false` is not 0, `"1"` is not true).
    """`consensus` settings: the proposal voted on and how ballots decide."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    proposal: str | None = Field(
        default=None, min_length=1, max_length=5_000,
        description="The proposal voted on; the topic when omitted.",
    )
    decision_rule: DecisionRule = Field(
        default=DecisionRule.MAJORITY,
        description="`majority` (more than half of yes+no), `supermajority` (at least two "
        "thirds of yes+no) or `unanimous` (every ballot cast, abstentions included, is yes).",
    )
    quorum: float = Field(strict=True,
        default=0.5, ge=0.0, le=1.0,
        description="Fraction of voters who must cast a ballot (abstain counts as cast) for a "
        "round to decide.",
    )


class DiscussionRules(BaseModel):
    """Options shared by the create body, the stored config and the session."""

    human_turn_timeout_s: float | None = Field(strict=True,
        default=300.0, gt=0, le=7 * 86_400,
        description="How long a person's turn waits (round_robin, consensus, a floor given to "
        "a person); null waits without a deadline.",
    )
    human_turn_policy: HumanTurnPolicy = Field(
        default=HumanTurnPolicy.SKIP,
        description="When a person's turn passes its deadline: `skip` it, `pause` the "
        "discussion, or `proxy` (the `proxy_agent` answers in the person's place).",
    )
    proxy_agent: str | None = Field(
        default=None, max_length=200,
        description="With `proxy`: the persona (or participant id) of the agent that answers "
        "for a person; stored as its participant id.",
    )
    stop_phrases: list[str] = Field(
        default_factory=list, max_length=20,
        description="The discussion completes (`stop_phrase`) when a message contains one "
        "(case-insensitive).",
    )
    deadline_s: float | None = Field(strict=True,
        default=None, gt=0, le=30 * 86_400,
        description="Wall-clock limit in seconds from creation (`deadline`).",
    )
    token_budget: int | None = Field(strict=True,
        default=None, ge=1,
        description="Stop (`token_budget`) once agent messages have used this many tokens "
        "(prompt + completion, as the backends report them).",
    )
    parallel_rounds: bool = Field(strict=True,
        default=False,
        description="round_robin, consensus: all agents of a round answer from the same "
        "context at once; their messages join the transcript together in listed order.",
    )
    require_approval: bool = Field(strict=True,
        default=False,
        description="`moderated`: posts by non-moderators are held until a moderator approves.",
    )
    consensus: ConsensusRules | None = Field(
        default=None, description="`consensus` settings (defaults when omitted)."
    )

    @field_validator("stop_phrases")
    @classmethod
    def _phrases(cls, phrases: list[str]) -> list[str]:
        cleaned = [p.strip() for p in phrases]
        if any(not 1 <= len(p) <= 200 for p in cleaned):
            raise ValueError("each stop phrase must be 1 to 200 characters")
        return cleaned

    def rules(self) -> dict[str, Any]:
        """Just the rule fields, as a dict (to copy between the models that carry them)."""
        return {name: getattr(self, name) for name in DiscussionRules.model_fields}
