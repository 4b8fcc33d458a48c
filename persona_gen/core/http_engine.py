"""A DSPy engine for any OpenAI-compatible chat-completions server (vLLM, Ollama, llama.cpp server, OpenAI).

DSPy 3.4 takes an *engine object* (``complete(Request) -> Response``) for a model it does not host; DSPy
keeps what it owns: the adapter, retries with backoff (``dspy.LM(num_retries=...)``), error projection and
history. Each engine does one HTTP attempt over keep-alive connections: ``OpenAICompatibleEngine`` for threaded
callers, with libcurl (``pycurl``: one handle per thread; ``http_client=curl``, the default) or ``urllib3``
(``http_client=urllib3``); ``AsyncOpenAICompatibleEngine`` with ``aiohttp`` for an event loop. libcurl reads
and parses the answer in C without the interpreter lock: a call's HTTP part costs ~0.01 ms of the calling
thread's CPU where urllib3 (whose ``http.client`` parses headers with the ``email`` package) costs ~0.1 ms, and
DSPy's generic lm15 provider path cost ~0.8 ms (``bench/RESULTS.md``). Proxies named by the environment
(``HTTPS_PROXY``, ``NO_PROXY``) are resolved once, when the engine is built, and handed to either client.
Errors are raised as ``dspy.lm15`` errors, which DSPy projects to its own: 429 is a rate limit
(``Retry-After`` honoured), 5xx or a 200 that is no chat completion a server error, timeouts and dropped
connections transient, all retried by DSPy; other 4xx are not retried.

Structured output follows ``structured_output``: ``json_schema`` sends the signature's schema (vLLM,
OpenAI), ``json_object`` sends JSON mode (llama.cpp server, Ollama), ``text`` sends none. The API key is
only ever put in the ``Authorization`` header: not in ``repr``, errors, or saved state.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import ssl
import threading
import urllib.request
import weakref
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import urllib3
from dspy import lm15

from persona_gen.core.config import HTTP_CLIENTS, STRUCTURED_OUTPUT
from persona_gen.core.errors import ConfigError, format_error
from persona_gen.core.lm import _request_messages, _response, _schema_of
from persona_gen.core.wire import on_the_wire

__all__ = ["HTTP_CLIENTS", "STRUCTURED_OUTPUT", "AsyncOpenAICompatibleEngine", "OpenAICompatibleEngine",
           "check_endpoint"]


def _error_message(raw: bytes) -> str:
    """The server's own words for an error: OpenAI's ``{"error": {"message": ...}}`` or the body's start."""
    text = raw.decode("utf-8", "replace")
    try:
        body = json.loads(text)
    except ValueError:
        return text.strip()[:300] or "(empty body)"
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict) and err.get("message"):
        return str(err["message"])[:300]
    if isinstance(err, str):
        return err[:300]
    return text.strip()[:300]


def _http_error(status: int, message: str, retry_after: float | None) -> Exception:
    """The ``dspy.lm15`` error for an HTTP status; DSPy retries rate limits, timeouts and server errors."""
    meta = {"provider": "openai_compatible", "status": status}
    if status in (401, 403):
        return lm15.AuthError(message, **meta)
    if status == 429:
        return lm15.RateLimitError(message, retry_after=retry_after, **meta)
    if status in (408, 504):
        return lm15.TimeoutError(message, **meta)
    if status >= 500:
        return lm15.ServerError(message, retry_after=retry_after, **meta)
    if status == 400 and "context" in message.lower():
        return lm15.ContextLengthError(message, **meta)
    if status in (400, 404, 409, 413, 422):
        return lm15.InvalidRequestError(message, **meta)
    return lm15.ProviderError(message, **meta)


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: DSPy's own backoff applies


def _proxy_for(base_url: str) -> str | None:
    """The proxy the environment names for ``base_url`` (``HTTPS_PROXY``, ``NO_PROXY``, ...), looked up once."""
    parts = urlsplit(base_url)
    if urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return urllib.request.getproxies().get(parts.scheme)


class _Wire:
    """What the sync and async engines share: the request body and the reading of an answer."""

    def __init__(self, base_url: str, model: str, *, api_key: str = "", structured_output: str = "json_object",
                 timeout_s: float = 60.0, concurrency: int = 16, api_key_env: str | None = None) -> None:
        if structured_output not in STRUCTURED_OUTPUT:
            raise ConfigError(format_error("models.*.structured_output", expected=" or ".join(STRUCTURED_OUTPUT),
                                           got=structured_output, where="conf/model/openai_compatible.yaml",
                                           fix="json_schema for vLLM/OpenAI, json_object for llama.cpp/Ollama"))
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(format_error("models.*.base_url", expected="an http(s) URL like http://host:8000/v1",
                                           got=base_url, where="conf/model/openai_compatible.yaml",
                                           fix="set models.generator.base_url=http://host:port/v1"))
        self.base_url = base_url.rstrip("/")
        # Only the variable's NAME, for a 401's message; never the key.
        self.api_key_env = api_key_env
        self._has_key = bool(api_key)
        self.url = self.base_url + "/chat/completions"
        self.model = model
        self.structured_output = structured_output
        self.timeout_s = float(timeout_s)
        self.concurrency = max(1, int(concurrency))
        self.proxy = _proxy_for(self.base_url)
        # What DSPy's JSONAdapter may send: a schema only where the server takes one, JSON mode otherwise.
        self.supports_response_schema = structured_output == "json_schema"
        params = {"temperature", "max_tokens", "top_p", "stop", "seed"}
        if structured_output != "text":
            params.add("response_format")
        self.supported_params = frozenset(params)
        self._path = (parts.path.rstrip("/") or "") + "/chat/completions"
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        # Requests sent (each retry is one more): the run's report shows retries as requests beyond one per call.
        self._sent_lock = threading.Lock()
        self.requests = 0
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"

    def __repr__(self) -> str:  # no key here, ever
        return (f"{type(self).__name__}(base_url={self.base_url!r}, model={self.model!r}, "
                f"structured_output={self.structured_output!r})")

    def body(self, request: Any) -> dict[str, Any]:
        """The chat-completions request body for a DSPy ``Request`` (counted: one per request sent)."""
        with self._sent_lock:
            self.requests += 1
        cfg = request.config
        body: dict[str, Any] = {"model": self.model, "messages": _request_messages(request)}
        for name in ("temperature", "max_tokens", "top_p", "seed"):
            value = getattr(cfg, name)
            if value is not None:
                body[name] = value
        if cfg.stop:
            body["stop"] = list(cfg.stop)
        if cfg.response_format is not None and self.structured_output != "text":
            schema = _schema_of(cfg.response_format)
            if schema is not None and self.structured_output == "json_schema":
                body["response_format"] = {"type": "json_schema",
                                           "json_schema": {"name": "outputs", "schema": schema, "strict": True}}
            else:
                body["response_format"] = {"type": "json_object"}
        return body

    def _timeout(self) -> Exception:
        return lm15.TimeoutError(f"no answer from {self.base_url} within {self.timeout_s:g} s",
                                 provider="openai_compatible")

    def _unreachable(self, exc: BaseException) -> Exception:
        return lm15.TransportError(f"cannot reach {self.base_url}: {type(exc).__name__}: {exc}",
                                   provider="openai_compatible")

    def _answer(self, status: int, retry_after: str | None, data: bytes) -> Any:
        """A DSPy ``Response`` for an HTTP answer, or the ``dspy.lm15`` error DSPy retries or reports."""
        if status >= 400:
            message = _error_message(data)
            if status in (401, 403):
                message += "; " + _key_hint(self.api_key_env, self._has_key)
            raise _http_error(status, message, _retry_after(retry_after))
        try:
            answer = json.loads(data)
            choice = answer["choices"][0]
            text = (choice.get("message") or {}).get("content") or ""
            usage = answer.get("usage") or {}
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            # A 200 whose body is not a chat completion: a server fault, retried like a 5xx.
            raise lm15.ServerError(f"malformed chat completion from {self.base_url}: {data[:120]!r}",
                                   provider="openai_compatible", status=status) from exc
        return _response(text, str(answer.get("model") or self.model), int(usage.get("prompt_tokens") or 0),
                         int(usage.get("completion_tokens") or 0),
                         "length" if choice.get("finish_reason") == "length" else "stop")



def _key_hint(api_key_env: str | None, has_key: bool) -> str:
    """Which environment variable the key comes from, and whether it is set (never the key)."""
    if not api_key_env:
        return "no api_key_env is set, so no key was sent: set models.<role>.api_key_env=<VARIABLE NAME>"
    if not has_key:
        return f"the key comes from ${api_key_env}, which is unset or empty: export {api_key_env}=<your key>"
    return f"the server refused the key in ${api_key_env}: check that it is the key for this server"


def check_endpoint(base_url: str, *, role: str, api_key: str = "", api_key_env: str | None = None,
                   timeout_s: float = 5.0) -> None:
    """One ``GET {base_url}/models`` before any work: a dead server or a refused key fails in seconds, not after
    every call's retries. A server without ``/models`` (404, 405) is reachable, so that passes; a 5xx passes too
    (the run's retries handle a transient fault).

    Raises:
        ConfigError: unreachable, timed out, or 401/403, naming the URL, the role and the fix.
    """
    url = base_url.rstrip("/") + "/models"
    headers = {"Accept": "application/json", **({"Authorization": f"Bearer {api_key}"} if api_key else {})}
    timeout = urllib3.Timeout(connect=min(5.0, timeout_s), read=min(10.0, timeout_s))
    proxy = _proxy_for(base_url)
    manager: Any = urllib3.ProxyManager(proxy, retries=False) if proxy else urllib3.PoolManager(retries=False)
    where = f"models.{role}.base_url, role {role}"
    try:
        resp = manager.request("GET", url, headers=headers, timeout=timeout, retries=False)
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        reason = str(reason).split(": ", 1)[-1] if "Failed to establish" in str(reason) else str(reason)
        raise ConfigError(format_error(
            f"LM server {base_url}", expected="reachable (an OpenAI-compatible server answering GET /models)",
            got=f"{type(exc).__name__}: {reason}"[:300], where=where,
            fix=f"start the server, or point models.{role}.base_url (PERSONA_GEN_BASE_URL) at a running one")) from None
    finally:
        manager.clear()
    if resp.status in (401, 403):
        raise ConfigError(format_error(
            f"LM server {base_url}", expected="to accept this run's key",
            got=f"HTTP {resp.status}: {_error_message(resp.data)}"[:300], where=where,
            fix=_key_hint(api_key_env, bool(api_key))))


class OpenAICompatibleEngine(_Wire):
    """``POST {base_url}/chat/completions`` for ``dspy.LM(..., engine=...)``; thread-safe, for threaded callers.

    ``http_client``: ``curl`` (libcurl through ``pycurl``, one keep-alive handle per calling thread; the default)
    or ``urllib3`` (one keep-alive pool). Both send the same request and read the answer the same way; ``timeout_s``
    bounds the whole call with curl and each read with urllib3.
    """

    def __init__(self, base_url: str, model: str, *, http_client: str = "curl", **kwargs: Any) -> None:
        super().__init__(base_url, model, **kwargs)
        if http_client not in HTTP_CLIENTS:
            raise ConfigError(format_error("models.*.http_client", expected=" or ".join(HTTP_CLIENTS),
                                           got=http_client, where="conf/model/openai_compatible.yaml",
                                           fix="curl (the default), or urllib3 where pycurl cannot be installed"))
        self.http_client = http_client
        if http_client == "curl":
            self._curl = _CurlClient(self)
            return
        timeout = urllib3.Timeout(connect=min(10.0, self.timeout_s), read=self.timeout_s)
        # One keep-alive pool, as many connections as calls in flight; retries are DSPy's, so none here. Through a
        # proxy, the manager sends the absolute URL (its pool for the proxy's host would refuse a foreign host).
        self._pool: Any = (urllib3.ProxyManager(self.proxy, maxsize=self.concurrency, block=False, retries=False,
                                                timeout=timeout) if self.proxy else
                           urllib3.connection_from_url(self.base_url, maxsize=self.concurrency, block=False,
                                                       retries=False, timeout=timeout))
        self._target = self.url if self.proxy else self._path

    # The exchange is wrapped in wire.on_the_wire(): a scheduler prepares calls ahead and frees slots early.
    wire_gated = True

    def complete(self, request: Any) -> Any:
        body = json.dumps(self.body(request)).encode()
        with on_the_wire() as exchange:
            status, retry_after, data = self._exchange(body)
            if status < 400:
                exchange.answered()
        return self._answer(status, retry_after, data)

    def _exchange(self, body: bytes) -> tuple[int, str | None, bytes]:
        if self.http_client == "curl":
            return self._curl.post(body)
        try:
            resp = self._pool.urlopen("POST", self._target, body=body, headers=self._headers, retries=False,
                                      preload_content=True)
        except urllib3.exceptions.NewConnectionError as exc:  # refused, no route: urllib3 files it under timeouts
            raise self._unreachable(exc) from exc
        except (urllib3.exceptions.TimeoutError, TimeoutError) as exc:
            raise self._timeout() from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise self._unreachable(exc) from exc
        return resp.status, resp.headers.get("Retry-After"), resp.data

    def stream(self, request: Any) -> Any:
        return lm15.response_to_events(self.complete(request))

    def close(self) -> None:
        if self.http_client == "curl":
            self._curl.close()
        elif isinstance(self._pool, urllib3.PoolManager):
            self._pool.clear()
        else:
            self._pool.close()


class _CurlClient:
    """libcurl easy handles, one per calling thread (a handle keeps its connection alive between calls and is
    not thread-safe), closed with their thread or by ``close``. A handle made before a ``fork`` is not used after
    it."""

    def __init__(self, wire: _Wire) -> None:
        import pycurl

        self._pycurl = pycurl
        self._wire = wire
        self._url = wire.url
        self._headers = [f"{k}: {v}" for k, v in wire._headers.items()] + ["Expect:"]  # no 100-continue round trip
        self._ca = _ca_locations()
        self._local = threading.local()
        self._lock = threading.Lock()
        self._handles: weakref.WeakSet[Any] = weakref.WeakSet()  # held by the threads' locals only

    def _handle(self) -> Any:
        pycurl = self._pycurl
        handle = getattr(self._local, "handle", None)
        if handle is not None and self._local.pid == os.getpid():
            return handle
        handle = pycurl.Curl()
        handle.setopt(pycurl.NOSIGNAL, 1)  # timeouts without SIGALRM: required with threads
        handle.setopt(pycurl.URL, self._url)
        handle.setopt(pycurl.HTTPHEADER, self._headers)
        handle.setopt(pycurl.PROXY, self._wire.proxy or "")  # "": no proxy (the environment was read once)
        cafile, capath = self._ca
        if cafile:
            handle.setopt(pycurl.CAINFO, cafile)
        if capath:
            handle.setopt(pycurl.CAPATH, capath)
        handle.setopt(pycurl.CONNECTTIMEOUT_MS, int(min(10.0, self._wire.timeout_s) * 1000))
        handle.setopt(pycurl.TIMEOUT_MS, max(1, int(self._wire.timeout_s * 1000)))
        self._local.handle, self._local.pid = handle, os.getpid()
        with self._lock:
            self._handles.add(handle)
        return handle

    def post(self, body: bytes) -> tuple[int, str | None, bytes]:
        """(status, Retry-After, body) of one POST; connection faults as the ``dspy.lm15`` errors DSPy retries."""
        pycurl = self._pycurl
        handle = self._handle()
        data = io.BytesIO()
        handle.setopt(pycurl.POSTFIELDS, body)
        # No header callback: each call into Python waits for the interpreter lock, and libcurl reads Retry-After
        # itself (RETRY_AFTER below).
        handle.setopt(pycurl.WRITEFUNCTION, data.write)
        try:
            handle.perform()  # the interpreter lock is let go for the whole exchange
        except pycurl.error as exc:
            code, message = (*exc.args, None, "")[:2]
            if code == pycurl.E_OPERATION_TIMEDOUT:
                raise self._wire._timeout() from exc
            raise self._wire._unreachable(ConnectionError(message or f"libcurl error {code}")) from exc
        status = handle.getinfo(pycurl.RESPONSE_CODE)
        # Seconds (an HTTP date converted); 0 when the header is absent or says 0: DSPy's own backoff then.
        retry_after = handle.getinfo(pycurl.RETRY_AFTER) if status >= 400 else 0
        return status, (str(retry_after) if retry_after > 0 else None), data.getvalue()

    def close(self) -> None:
        with self._lock:
            handles, self._handles = list(self._handles), weakref.WeakSet()
        for handle in handles:
            handle.close()
        self._local = threading.local()


def _ca_locations() -> tuple[str | None, str | None]:
    """(CA file, CA folder) for https: the ones Python's ``ssl`` (and so urllib3 and aiohttp) trusts, with
    ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` honoured; certifi's bundle where the system has none."""
    paths = ssl.get_default_verify_paths()
    cafile = paths.cafile if paths.cafile and os.path.isfile(paths.cafile) else None
    capath = paths.capath if paths.capath and os.path.isdir(paths.capath) else None
    if cafile is None and capath is None:
        import certifi

        cafile = certifi.where()
    return cafile, capath


class AsyncOpenAICompatibleEngine(_Wire):
    """The same, ``async``, over ``aiohttp``: for ``dspy.LM(..., async_engine=...)`` and ``Caller.map``'s
    event loop, where 64 calls in flight cost no threads. A session belongs to one event loop, so there is one
    per loop; ``aclose()`` closes the current loop's."""

    def __init__(self, base_url: str, model: str, **kwargs: Any) -> None:
        super().__init__(base_url, model, **kwargs)
        self._sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()

    def _session(self) -> Any:
        loop = asyncio.get_running_loop()
        session = self._sessions.get(loop)
        if session is None or session.closed:
            timeout = aiohttp.ClientTimeout(total=self.timeout_s, connect=min(10.0, self.timeout_s))
            session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=self.concurrency),
                                            headers=self._headers, timeout=timeout)
            self._sessions[loop] = session
        return session

    async def complete(self, request: Any) -> Any:
        try:
            async with self._session().post(self.url, data=json.dumps(self.body(request)).encode(),
                                            proxy=self.proxy) as resp:
                data = await resp.read()
        except (asyncio.TimeoutError, TimeoutError) as exc:
            raise self._timeout() from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise self._unreachable(exc) from exc
        return self._answer(resp.status, resp.headers.get("Retry-After"), data)

    async def stream(self, request: Any) -> Any:
        for event in lm15.response_to_events(await self.complete(request)):
            yield event

    async def aclose(self) -> None:
        """Close this event loop's session (``Caller.map`` calls it before its loop ends)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        session = self._sessions.pop(loop, None)
        if session is not None:
            await session.close()
