"""Requests from any console to the single writer: a row in `control_request`, carried out by it.

A viewer never talks to the feed; it asks the writer (another process, or its own) by inserting
a pending row, which the writer sends on the feed and then marks sent, acked or failed.
"""

from __future__ import annotations

import uuid
from contextlib import closing
from pathlib import Path

from store import models
from store.database import STORE_ERRORS, StoreError, connect
from store.health import fault_of

ACCOUNT_ACTIONS = ("disable", "enable")
CALL_ACTIONS = ("hangup",)
KINDS = ("customer", "carrier")


def request_control(path: str | Path, *, action: str, kind: str = "", account: str = "",
                    call_id: str = "", until_ms: int | None = None, reason: str = "",
                    requested_by: str = "", now_ms: int) -> str:
    """Store a pending request (disable/enable an account, hang up a call); return its id."""
    _check(action, kind, account, call_id)
    request = models.ControlRequest(
        id=uuid.uuid4().hex, created_ms=now_ms, action=action, kind=kind, account=account,
        call_id=call_id, until_ms=until_ms, reason=reason, requested_by=requested_by,
    ).model_dump()
    columns = ", ".join(request)
    values = ", ".join(f":{name}" for name in request)
    try:
        with closing(connect(path, mode="rw")) as db:
            # One statement in autocommit mode: the shortest write transaction there is.
            db.execute(f"INSERT INTO control_request ({columns}) VALUES ({values})", request)
    except STORE_ERRORS as error:
        raise StoreError(f"cannot store the request in {path}: {fault_of(error)}") from error
    return request["id"]


def _check(action: str, kind: str, account: str, call_id: str) -> None:
    if action in ACCOUNT_ACTIONS:
        if kind not in KINDS or not account:
            raise ValueError(f"{action} needs a kind (customer or carrier) and an account")
    elif action in CALL_ACTIONS:
        if not call_id:
            raise ValueError(f"{action} needs a call_id")
    else:
        raise ValueError(f"unknown action {action!r}: one of "
                         f"{', '.join(ACCOUNT_ACTIONS + CALL_ACTIONS)}")

