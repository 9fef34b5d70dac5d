"""A batch's request body and stored config, and how each item's topic is made.

Topics come as given (`topics`) or from the template's topic by plain `{name}` substitution
(`variables`, core.ground.template). The stored config keeps what the client sent (template and
topics or variable sets), never the filled-in copies, so what a batch stores is bounded by what
it was sent; each item's topic is filled when it is shown or started.
"""

from __future__ import annotations

from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from core.ground.errors import Unprocessable
from core.ground.jsonlimits import check_free
from core.ground.models import CreateDiscussion
from core.ground.template import fill, placeholders

MAX_VARIABLES_PER_SET = 32
MAX_VARIABLE_CHARS = 2000


class CreateBatch(BaseModel):
    """Body of `POST /v1/batches`: a template and either topics or variable sets."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str = Field(default="batch", min_length=1, max_length=200)
    template: CreateDiscussion
    topics: list[str] | None = Field(default=None, min_length=1)
    variables: list[dict[str, str]] | None = Field(
        default=None, min_length=1,
        description="Each set fills the plain `{name}` placeholders of the template's topic "
        "(`{{` and `}}` for literal braces; nothing else in braces is allowed).",
    )
    concurrency: int = Field(default=5, ge=1, le=1000, strict=True)

    @field_validator("variables")
    @classmethod
    def _variables(cls, sets: list[dict[str, str]] | None) -> list[dict[str, str]] | None:
        for i, values in enumerate(sets or []):
            if len(values) > MAX_VARIABLES_PER_SET:
                raise ValueError(f"variables[{i}] has more than {MAX_VARIABLES_PER_SET} names")
            for name, value in values.items():
                if len(name) > 64 or len(value) > MAX_VARIABLE_CHARS:
                    raise ValueError(f"variables[{i}]: names up to 64 and values up to "
                                     f"{MAX_VARIABLE_CHARS} characters")
            check_free(values, f"variables[{i}]")
        return sets

    @model_validator(mode="after")
    def _one_source(self) -> CreateBatch:
        if (self.topics is None) == (self.variables is None):
            raise ValueError("give exactly one of topics or variables")
        for t in self.topics or []:
            if not 1 <= len(t) <= 2000:
                raise ValueError("each topic must be 1 to 2000 characters")
        return self


class BatchConfig(BaseModel):
    """What is stored: the request as sent (older batches stored filled-in `topics`)."""

    id: str
    name: str
    template: CreateDiscussion
    topics: list[str] | None = None
    variables: list[dict[str, str]] | None = None
    concurrency: int
    owner: str | None = None
    created_at: str

    @property
    def total(self) -> int:
        return len(self.topics if self.topics is not None else self.variables or [])

    def topic(self, idx: int) -> str:
        """Item `idx`'s topic: as given, or the template's filled with its variable set."""
        if self.topics is not None:
            return self.topics[idx]
        return fill(self.template.topic, (self.variables or [])[idx])


def check_items(body: CreateBatch, max_items: int) -> None:
    """422 unless every item makes a discussion a direct create would accept."""
    count = len(body.topics if body.topics is not None else body.variables or [])
    if count > max_items:
        raise Unprocessable(f"a batch may have at most {max_items} items")
    if body.variables is None:
        return
    try:
        placeholders(body.template.topic)
    except ValueError as exc:
        raise Unprocessable(f"template.topic: {exc}") from None
    base: dict[str, Any] = body.template.model_dump(mode="json", exclude_unset=True)
    for i, values in enumerate(body.variables):
        try:
            topic = fill(body.template.topic, values)
            CreateDiscussion.model_validate({**base, "topic": topic})
        except ValueError as exc:  # ValidationError is a ValueError too
            raise Unprocessable(f"variables[{i}] does not make a valid topic: "
                                f"{_first(exc)}") from None


def _first(exc: ValueError) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors(include_url=False, include_input=False, include_context=False)[0]
        return f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
    return str(exc)
