"""Verify bearer tokens and mint them (for tests, benchmarks and operators)."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any

from mcp_bridge.security.simple_jwt import jwt

# Secret length is policed by the configuration (production demands 32 bytes), not per token.
warnings.filterwarnings("ignore", category=jwt.warnings.InsecureKeyLengthWarning)

ALGORITHM = "HS256"
ROLES = frozenset({"viewer", "operator", "admin"})
SUBMIT_ROLES = frozenset({"operator", "admin"})


class AuthError(Exception):
    """The token is missing or invalid (401)."""


@dataclass(frozen=True)
class Principal:
    subject: str
    roles: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    def may_read(self, owner: str) -> bool:
        return self.is_admin or owner == self.subject

    @property
    def may_submit(self) -> bool:
        return bool(self.roles & SUBMIT_ROLES)


def verify(token: str, secret: str) -> Principal:
    """Decode an HS256 token; any other algorithm (`none` included) is refused."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token, secret, algorithms=[ALGORITHM], options={"require": ["sub"]}
        )
    except jwt.ExpiredSignatureError:
        raise AuthError("token expired") from None
    except jwt.InvalidAlgorithmError:
        raise AuthError("token algorithm not allowed") from None
    except jwt.InvalidSignatureError:
        raise AuthError("token signature invalid") from None
    except jwt.PyJWTError as error:
        raise AuthError(f"token invalid: {error}") from None
    subject, roles = claims.get("sub"), claims.get("roles", [])
    if not isinstance(subject, str) or not subject:
        raise AuthError("token invalid: sub must be a non-empty string")
    if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
        raise AuthError("token invalid: roles must be a list of strings")
    return Principal(subject, frozenset(roles) & ROLES)


def mint(subject: str, roles: list[str], secret: str, ttl_seconds: float | None = 3600) -> str:
    """A signed token; `ttl_seconds=None` mints one without expiry (as the checklist's does)."""
    claims: dict[str, Any] = {"sub": subject, "roles": roles, "iat": int(time.time())}
    if ttl_seconds is not None:
        claims["exp"] = int(time.time() + ttl_seconds)
    return jwt.encode(claims, secret, algorithm=ALGORITHM)
