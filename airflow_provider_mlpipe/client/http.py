"""One connection to Airflow's api-server: credentials, tokens, and one request at a time.

Every request goes through the official ``apache-airflow-client``'s ``ApiClient`` (the generated API
classes, or ``call_api`` for paths outside them: login, the provider's plugin endpoint), with a bearer
token. Errors come back as named exceptions: :class:`~airflow_provider_mlpipe.exceptions.TransientApiError`
for what may pass when sent again (5xx, 429, a lost connection or a time-out), so that callers can
retry (:mod:`airflow_provider_mlpipe.client.retry`); the others say what is wrong with the request.

Tokens expire (``[api_auth] jwt_expiration_time``, a day by default). A token obtained from a user name
and password (or from an api-server with ``simple_auth_manager_all_admins``) is renewed shortly before
it expires, and once more if the api-server answers 401 anyway (clocks differ); a token given as
such cannot be renewed, and an expired one is an error that says so.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from airflow_provider_mlpipe.exceptions import (
    AirflowApiError,
    ApiAuthenticationError,
    ApiConflictError,
    ExecutionNotFoundError,
    MlpipeError,
    TransientApiError,
)

if TYPE_CHECKING:
    from airflow_client.client import ApiClient

# HTTP answers that say "not now" rather than "not this request".
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
# (connect, read) seconds: a busy SQLite api-server may take a while to answer, but never forever.
REQUEST_TIMEOUT = (10.0, 120.0)
# Renew a token this long before it expires, or at 80 % of its life if that comes first.
RENEW_BEFORE_SECONDS = 60.0


def _claims(token: str) -> dict[str, Any]:
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


def token_expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT (seconds since the epoch), read without checking the signature
    (only the api-server can check it; the client only wants to know when to renew)."""
    try:
        return float(_claims(token)["exp"])
    except (KeyError, TypeError, ValueError):
        return None


def renewal_time(token: str) -> float | None:
    """When to renew ``token``: a minute before it expires, or at 80 % of its life (``iat`` to ``exp``)
    for a short-lived one; None if it does not say when it expires."""
    expires = token_expiry(token)
    if expires is None:
        return None
    issued = _claims(token).get("iat")
    margin = RENEW_BEFORE_SECONDS
    if isinstance(issued, (int, float)) and expires > issued:
        margin = min(margin, 0.2 * (expires - issued))
    return expires - margin


def error_detail(body: Any) -> str:
    """The ``detail`` (or ``reason``) of an API error body, or the body itself."""
    text = body.decode(errors="replace") if isinstance(body, bytes) else str(body or "")
    try:
        parsed = json.loads(text)
        detail = parsed.get("detail") or parsed.get("reason") or text
    except (ValueError, AttributeError):
        return text[:500]
    return detail if isinstance(detail, str) else json.dumps(detail)[:500]


def _connection_errors() -> tuple[type[BaseException], ...]:
    import urllib3

    # urllib3's own errors (MaxRetryError, ProtocolError, timeouts) are not OSErrors.
    return (OSError, urllib3.exceptions.HTTPError)


class ApiConnection:
    """Credentials and an ``ApiClient`` for one api-server; sends one request at a time.

    :param api_url: the api-server's base URL.
    :param token: a fixed JWT (never renewed).
    :param username: a user to log in as (with ``password``); tokens are renewed with them.
    :param password: that user's password.
    """

    def __init__(
        self, api_url: str, *, token: str | None, username: str | None, password: str | None
    ) -> None:
        self.api_url = api_url
        self._fixed_token = token
        self._username = username
        self._password = password
        self._client: ApiClient | None = None
        self._renew_at: float | None = None
        self._lock = threading.Lock()  # one session may be shared by threads; log in once

    # -- tokens ---------------------------------------------------------------------------
    @property
    def client(self) -> ApiClient:
        """The ``ApiClient``, logged in on first use and holding a token that is not about to expire."""
        with self._lock:
            if self._client is None:
                from airflow_client.client import ApiClient, Configuration

                token = self._fixed_token or self._fetch_token()
                self._client = ApiClient(Configuration(host=self.api_url, access_token=token))
                self._renew_at = renewal_time(token)
            elif self._renewable and self._expires_soon():
                self._renew_locked()
            return self._client

    @property
    def _renewable(self) -> bool:
        return self._fixed_token is None

    def _expires_soon(self) -> bool:
        return self._renew_at is not None and time.time() >= self._renew_at

    def renew_token(self, rejected: str | None) -> bool:
        """Get a new token after the api-server refused ``rejected``; False if it cannot be renewed.

        A thread that finds the token already renewed by another thread does not log in again.
        """
        if not self._renewable:
            return False
        with self._lock:
            assert self._client is not None
            if self._client.configuration.access_token == rejected:
                self._renew_locked()
        return True

    def _renew_locked(self) -> None:
        assert self._client is not None
        token = self._fetch_token()
        self._client.configuration.access_token = token
        self._renew_at = renewal_time(token)

    def _fetch_token(self) -> str:
        from airflow_client.client import ApiClient, Configuration

        anonymous = ApiClient(Configuration(host=self.api_url))
        if self._username and self._password:
            body = {"username": self._username, "password": self._password}
            data = self._send(anonymous, "POST", "/auth/token", body, what=f"log in as {self._username!r}")
        else:
            data = self._send(anonymous, "GET", "/auth/token", None, what="get a token without credentials")
        if not isinstance(data, dict) or "access_token" not in data:
            raise ApiAuthenticationError(f"{self.api_url}/auth/token answered without a token: {data!r}")
        return str(data["access_token"])

    # -- one request ------------------------------------------------------------------------
    def request(self, method: str, path: str, body: Any, *, what: str) -> Any:
        """A JSON request to a path outside the generated API (the plugin endpoint); the parsed answer."""
        return self._authenticated(lambda client: self._send(client, method, path, body, what=what))

    def call(self, what: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call a generated API method (``function(api_client)`` returns the bound method)."""
        from airflow_client.client import ApiException

        def once(client: ApiClient) -> Any:
            try:
                return function(client)(*args, _request_timeout=REQUEST_TIMEOUT, **kwargs)
            except ApiException as error:
                raise self._error(what, int(error.status or 0), error.body) from None
            except _connection_errors() as error:
                raise TransientApiError(f"{what}: cannot reach {self.api_url}: {error}") from None

        return self._authenticated(once)

    def _authenticated(self, send: Callable[[ApiClient], Any]) -> Any:
        client = self.client
        token = client.configuration.access_token
        try:
            return send(client)
        except ApiAuthenticationError:
            # Expired (or the clocks differ): log in again once, then let a second refusal through.
            if not self.renew_token(token):
                raise ApiAuthenticationError(
                    "the api-server refused the token (expired or invalid). A token given as such "
                    "(MLPIPE_API_TOKEN) cannot be renewed: give MLPIPE_API_USERNAME and "
                    "MLPIPE_API_PASSWORD instead, or a new token"
                ) from None
            return send(self.client)

    def _send(self, client: ApiClient, method: str, path: str, body: Any, *, what: str) -> Any:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if client.configuration.access_token:
            headers["Authorization"] = f"Bearer {client.configuration.access_token}"
        try:
            response = client.call_api(
                method,
                self.api_url + path,
                header_params=headers,
                body=body,
                _request_timeout=REQUEST_TIMEOUT,
            )
            response.read()
        except _connection_errors() as error:
            raise TransientApiError(f"cannot {what} at {self.api_url}: {error}") from None
        text = response.data.decode(errors="replace") if response.data else ""
        if response.status >= 400:
            raise self._error(f"cannot {what}", response.status, text)
        try:
            return json.loads(text) if text else None
        except ValueError:
            raise TransientApiError(f"cannot {what}: the answer is not JSON: {text[:200]!r}") from None

    def _error(self, what: str, status: int, body: Any) -> MlpipeError:
        message = f"{what}: HTTP {status}: {error_detail(body)}"
        if status == 404:
            return ExecutionNotFoundError(f"{what}: not found ({error_detail(body)})")
        if status == 401:
            return ApiAuthenticationError(message)
        if status == 409:
            return ApiConflictError(message)
        if status in TRANSIENT_STATUSES:
            return TransientApiError(message)
        return AirflowApiError(message)
