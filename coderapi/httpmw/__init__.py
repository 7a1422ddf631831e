"""Middleware: what every request passes (listed in order by `coderapi.routes.mount`)."""
