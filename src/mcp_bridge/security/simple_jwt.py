"""The JWT library the bridge uses (PyJWT), importable as the GA checklist's token command does:

from mcp_bridge.security.simple_jwt import jwt
jwt.encode({"sub": "bench", "roles": ["operator"]}, "dev-secret", algorithm="HS256")
"""

import jwt

__all__ = ["jwt"]
