"""OIDC_ROLE_MAP: which of the identity provider's groups give which role.

`zoom-admins=admin,zoom-ops=operator,staff=viewer,sales-ops=operator@Sales`: a group gives a role
on every connection, or, with `@<connection name>`, on that Zoom connection only. A user's global
role is the highest their groups give; their connection roles are the highest per connection.
"""

from dataclasses import dataclass

from meetings.models.access import ROLE_RANK, Role


@dataclass(frozen=True)
class RoleMapping:
    group: str
    role: Role
    connection: str = ""  # a ZoomAccount's name; empty: every connection


def parse_role_map(text):
    """The mappings in TEXT; ValueError naming the first bad entry (and what is expected)."""
    mappings = []
    for raw in text.split(","):
        entry = raw.strip()
        if not entry:
            continue
        group, sep, value = entry.partition("=")
        group, value = group.strip(), value.strip()
        if not sep or not group or not value:
            raise ValueError(
                f"{entry!r} is not group=role (for example zoom-ops=operator or "
                "sales-ops=operator@Sales)"
            )
        role, at, connection = value.partition("@")
        role, connection = role.strip().lower(), connection.strip()
        if role not in Role.values:
            raise ValueError(f"{entry!r}: the role must be admin, operator or viewer, not {role!r}")
        if at and not connection:
            raise ValueError(f"{entry!r}: name the connection after the @")
        if at and role == Role.ADMIN:
            raise ValueError(
                f"{entry!r}: admin is a role on the whole dashboard, not on one connection"
            )
        mappings.append(RoleMapping(group, Role(role), connection))
    return mappings


def groups_in(claims, claim):
    """The group names in the ID token's CLAIM: a list, or one string (some providers send a
    single group as a string)."""
    value = claims.get(claim)
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return []


def roles_for(groups, mappings):
    """(global role or None, {connection name: role}) that GROUPS give under MAPPINGS."""
    groups = set(groups)
    global_role = None
    connections = {}
    for m in mappings:
        if m.group not in groups:
            continue
        if m.connection:
            current = connections.get(m.connection)
            if current is None or ROLE_RANK[m.role] > ROLE_RANK[current]:
                connections[m.connection] = m.role
        elif global_role is None or ROLE_RANK[m.role] > ROLE_RANK[global_role]:
            global_role = m.role
    # A connection role no higher than the global one adds nothing.
    if global_role is not None:
        connections = {
            name: role
            for name, role in connections.items()
            if ROLE_RANK[role] > ROLE_RANK[global_role]
        }
    return global_role, connections
