"""coderapi: Coder's "General" REST API (/api/v2) as a Python WSGI service."""

__version__ = "2.29.0"
