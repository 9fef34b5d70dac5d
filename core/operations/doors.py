"""Discussions started on an owner's behalf (a batch item, a schedule's slot) spend the owner's
budgets exactly as a REST create does: the per-user create limit (the same counter, see
core/storage/rates.py), the active-discussion quota and the daily spend."""

from __future__ import annotations

from core.ground.errors import QuotaExceeded, RateLimited, ServiceUnavailable
from core.ground.models import CreateDiscussion, Session
from core.services.discussions import Services, create_discussion
from core.storage.rates import CREATE_SCOPE, rates_for

# Refusals that pass with time: a caller retries later instead of failing the item.
NOT_NOW = (QuotaExceeded, RateLimited, ServiceUnavailable)


def create_on_behalf(svc: Services, body: CreateDiscussion, owner: str | None, *,
                     creator: str) -> Session:
    """Create a discussion for `owner`, counted against their create limit and quotas.

    Raises one of NOT_NOW when the owner has no budget left for now. The limit is tested
    before and spent after a successful create, so a refused create costs nothing.
    """
    rates = rates_for(svc.settings) if owner else None
    if rates is not None and owner:
        rates.check(CREATE_SCOPE, owner)
    session = create_discussion(svc, body, owner, creator=creator)
    if rates is not None and owner:
        try:
            rates.hit(CREATE_SCOPE, owner)
        except RateLimited:  # another door spent the last one meanwhile; this one is made
            pass
    return session
