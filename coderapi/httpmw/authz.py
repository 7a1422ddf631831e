"""`authorize`: the signed-in user's roles checked against `rbac`'s policy, inside a request."""

from __future__ import annotations

from coderapi import rbac
from coderapi.httpapi import forbidden
from coderapi.httpmw.apikey import current_user


def authorize(action: str, resource: str) -> None:
    """Abort with coderd's 403 Forbidden body unless the signed-in user may do `action` on `resource`.

    Aborts: 403 `httpapi.forbidden()`. Fails loudly (RuntimeError) if the token check did not run.
    """
    if not rbac.allows(current_user().rbac_roles, action, resource):
        raise forbidden()
