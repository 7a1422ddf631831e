"""Coder's deployment configuration (the option table, typed values, loading) and coderapi's settings."""
