"""Roles and permissions (coderd `rbac/roles.go`, the parts these endpoints need).

A user's site roles are stored in `users.rbac_roles`; `member` is implied for everyone. Pure policy:
handlers ask through `httpmw.authz.authorize`, which reads the signed-in user.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

ROLE_OWNER = "owner"
ROLE_MEMBER = "member"
ROLE_AUDITOR = "auditor"
ROLE_TEMPLATE_ADMIN = "template-admin"
ROLE_USER_ADMIN = "user-admin"

# Roles that can be assigned (member is implied, never stored).
SITE_ROLES = (ROLE_OWNER, ROLE_AUDITOR, ROLE_TEMPLATE_ADMIN, ROLE_USER_ADMIN)

ACTION_READ = "read"
ACTION_CREATE = "create"
ACTION_UPDATE = "update"
ACTION_DELETE = "delete"

RESOURCE_DEPLOYMENT_CONFIG = "deployment_config"
RESOURCE_DEPLOYMENT_STATS = "deployment_stats"
RESOURCE_USER = "user"
RESOURCE_API_KEY = "api_key"
RESOURCE_TEMPLATE = "template"
RESOURCE_AUDIT_LOG = "audit_log"
RESOURCE_GROUP = "group"

WILDCARD = "*"

# Site-wide permissions per role: resource -> actions. The member role's user-scoped permissions (its
# own user and keys) are in `OWN_RESOURCES`.
SITE_PERMISSIONS: Mapping[str, Mapping[str, frozenset[str]]] = {
    ROLE_OWNER: {WILDCARD: frozenset({WILDCARD})},
    ROLE_MEMBER: {},
    ROLE_AUDITOR: {
        RESOURCE_DEPLOYMENT_CONFIG: frozenset({ACTION_READ}),
        RESOURCE_DEPLOYMENT_STATS: frozenset({ACTION_READ}),
        RESOURCE_AUDIT_LOG: frozenset({ACTION_READ}),
        RESOURCE_TEMPLATE: frozenset({ACTION_READ}),
        RESOURCE_USER: frozenset({ACTION_READ}),
        RESOURCE_GROUP: frozenset({ACTION_READ}),
    },
    ROLE_TEMPLATE_ADMIN: {
        RESOURCE_TEMPLATE: frozenset({WILDCARD}),
        RESOURCE_USER: frozenset({ACTION_READ}),
        RESOURCE_GROUP: frozenset({ACTION_READ}),
    },
    ROLE_USER_ADMIN: {
        RESOURCE_USER: frozenset({ACTION_READ, ACTION_CREATE, ACTION_UPDATE, ACTION_DELETE}),
        RESOURCE_GROUP: frozenset({WILDCARD}),
    },
}

# What every signed-in user may do to resources they own.
OWN_RESOURCES: Mapping[str, frozenset[str]] = {
    RESOURCE_USER: frozenset({ACTION_READ, ACTION_UPDATE}),
    RESOURCE_API_KEY: frozenset({WILDCARD}),
}


class UnknownRoleError(ValueError):
    """A role name that is not one of the built-in site roles."""


def parse_roles(names: Iterable[str]) -> tuple[str, ...]:
    """Validated, de-duplicated site role names in the order given; `member` is dropped (implied).
    Raises UnknownRoleError."""
    out: list[str] = []
    for raw in names:
        name = raw.strip().lower()
        if not name or name == ROLE_MEMBER:
            continue
        if name not in SITE_ROLES:
            raise UnknownRoleError(f"unknown role {raw.strip()!r}; roles are {', '.join((*SITE_ROLES, ROLE_MEMBER))}")
        if name not in out:
            out.append(name)
    return tuple(out)


def expand(roles: Iterable[str]) -> tuple[str, ...]:
    """The roles a user acts with: their site roles plus the implied `member`."""
    names = [r for r in roles if r != ROLE_MEMBER]
    return (*names, ROLE_MEMBER)


def allows(roles: Iterable[str], action: str, resource: str, *, owned: bool = False) -> bool:
    """Whether a user with `roles` may do `action` on `resource` (`owned`: it is their own)."""
    if owned and _grants(OWN_RESOURCES, action, resource):
        return True
    for role in expand(roles):
        perms = SITE_PERMISSIONS.get(role)
        if perms is not None and _grants(perms, action, resource):
            return True
    return False


def _grants(perms: Mapping[str, frozenset[str]], action: str, resource: str) -> bool:
    for key in (resource, WILDCARD):
        actions = perms.get(key)
        if actions is not None and (action in actions or WILDCARD in actions):
            return True
    return False


def is_owner(roles: Iterable[str]) -> bool:
    return ROLE_OWNER in roles
