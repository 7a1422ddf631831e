"""`gunicorn wsgi:app`: the app configured from CODER_* / CODERAPI_* environment variables."""

from coderapi.app import create_app

app = create_app()
