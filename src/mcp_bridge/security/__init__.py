"""Authentication: HS256 JWT bearer tokens with roles."""
