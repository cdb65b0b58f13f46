"""Token validation, the caller, scopes, and the development issuer with its JWKS."""
