"""Supabase Auth: verifying its JWTs (local HS256 secret or a hosted project's JWKS)."""
