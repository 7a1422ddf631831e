"""Keys of the per-request state kept in the WSGI environ.

State that belongs to one request lives in its environ, not on Flask's `g`: `g` belongs to the app
context, which a request shares when one is already pushed (tests, the CLI), while the environ is new
for every request, so nothing has to be cleared between requests.
"""

from __future__ import annotations

START = "coderapi.start"  # time.perf_counter() when the request arrived
RAW_PATH = "coderapi.raw_path"  # PATH_INFO as sent, before runs of `/` were collapsed
REQUEST_ID = "coderapi.request_id"  # the X-Coder-Request-Id of this request
CLIENT_IP = "coderapi.client_ip"  # the client's IP as the proxy settings decide it
AUTH_OUTCOME = "coderapi.auth_outcome"  # the token check's result (Authenticated or the APIError to answer)
API_KEY = "coderapi.api_key"  # the signed-in request's APIKey, once its use is recorded
USER = "coderapi.user"  # the signed-in request's User
USER_PARAM = "coderapi.user_param"  # the User that `{user}` names
ROUTE = "coderapi.route"  # the rule Flask matched (`/api/v2/users/<user>`), kept for the metrics
RATE_LIMIT = "coderapi.rate_limit"  # (limit, remaining, reset) for the X-Ratelimit-* headers
