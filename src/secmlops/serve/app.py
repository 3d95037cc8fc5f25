"""The gateway application (FastAPI). Every request: size cap → token → tenant and scope → limits →
input validation and shields → model or upstream → output filter → audit record → metrics.

Audit records hold hashes of inputs and outputs, never bodies, prompts or tokens, and are committed
before the response is sent: an acknowledged request always has its record.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.concurrency import run_in_threadpool

from secmlops.errors import GatewayError, StoreError
from secmlops.serve.audit_writer import AuditWriter
from secmlops.serve.breaker import CircuitBreaker, CostBudget
from secmlops.serve.config import GatewayConfig
from secmlops.serve.extraction import ExtractionMonitor
from secmlops.serve.limits_guard import Exceeded, Limiter, LimitSettings, LimitStoreUnavailable
from secmlops.serve.models import LoadResult, ModelEntry, TabularModel, load_models
from secmlops.serve.monitoring import Monitor
from secmlops.serve.shields import (
    ChatLimits,
    check_chat_parameters,
    make_redactor,
    normalize_text,
    score_injection,
)
from secmlops.serve.tokens import Identity, TokenRejected, TokenVerifier, load_verify_key

if TYPE_CHECKING:
    from secmlops.serve.injection_classifier import EmbeddingClassifier

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]
]

_ERROR_BODY = {
    "application/json": {
        "schema": {
            "type": "object",
            "required": ["detail"],
            "properties": {"detail": {}, "score": {"type": "number"}},
        }
    }
}
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"description": text, "content": _ERROR_BODY}
    for code, text in {
        400: "Refused by a shield (e.g. prompt injection)",
        401: "Missing, invalid or expired bearer token",
        403: "The token lacks the scope for this model or route",
        404: "No such model for this tenant",
        413: "Request body too large",
        422: "Input does not match the model's schema or a parameter is refused",
        429: "Rate limit or budget reached (see Retry-After)",
        502: "The upstream chat model failed or answered with a server error",
        503: "The audit record could not be committed (nothing was answered), or the model's or "
             "upstream's circuit is open (see Retry-After)",
    }.items()
}  # fmt: skip

# Request bodies are read by the routes themselves (validation errors are 422 with one clear
# message); these schemas document them for clients and drive the schemathesis tests.
_NUMBER_ROW = {"type": "array", "items": {"type": "number"}}
_NAMED_ROW = {"type": "object", "additionalProperties": {"type": "number"}}
PREDICT_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": {"type": "object", "required": ["instances"], "additionalProperties": False,
               "properties": {"instances": {"type": "array", "minItems": 1, "maxItems": 256,
                                            "items": {"anyOf": [_NUMBER_ROW, _NAMED_ROW]}}}}}}},
    # The route reads its path parameter itself (see `predict`), so it is documented here.
    "parameters": [{"name": "name", "in": "path", "required": True,
                    "schema": {"type": "string", "title": "Name"}}]}  # fmt: skip


def chat_body(limits: ChatLimits) -> dict[str, Any]:
    """The chat request schema with this gateway's caps, exactly what `check_chat_parameters`
    enforces (the total of `limits.max_chars` over all messages cannot be stated in it)."""
    count = {"type": ["integer", "null"], "minimum": 1, "maximum": limits.max_tokens}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": ["messages"], "properties": {
            "model": {"type": ["string", "null"]},
            "messages": {"type": "array", "minItems": 1, "maxItems": limits.max_messages, "items": {
                "type": "object", "required": ["role"], "properties": {
                    "role": {"enum": ["system", "user", "assistant", "tool"]},
                    "content": {"type": "string"}}}},
            "max_tokens": count,
            "max_completion_tokens": count,
            "logprobs": {"type": ["boolean", "null"]} if limits.max_top_logprobs else {"enum": [False, None]},
            "top_logprobs": {"type": ["integer", "null"], "minimum": 0, "maximum": limits.max_top_logprobs},
            "logit_bias": {"type": ["object", "null"], "maxProperties": 0},
            "stream": {"enum": [False, None]}}}}}}}  # fmt: skip


def _sha256(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


class _HTTPMiddleware:
    """Pure ASGI middleware that acts on HTTP requests only (`http`); the rest passes through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:  # fmt: skip
        if scope["type"] != "http":
            await self.app(scope, receive, send)
        else:
            await self.http(scope, receive, send)

    async def http(self, scope: Scope, receive: Callable[[], Awaitable[Message]],
                   send: Callable[[Message], Awaitable[None]]) -> None:  # fmt: skip
        raise NotImplementedError


class BodyLimit(_HTTPMiddleware):
    """Refuse bodies over the cap, declared or streamed, with 413."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        super().__init__(app)
        self.max_bytes = max_bytes

    async def http(self, scope: Scope, receive: Callable[[], Awaitable[Message]],
                   send: Callable[[Message], Awaitable[None]]) -> None:  # fmt: skip
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await JSONResponse({"detail": "request body too large"}, 413)(scope, receive, send)
            return
        seen = 0

        async def capped() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise HTTPException(413, "request body too large")
            return message

        await self.app(scope, capped, send)


class CountInFlight(_HTTPMiddleware):
    """Keep `gateway.in_flight`, the HTTP requests being served now (the audit record of a
    request served alone is committed without a thread hand-off)."""

    def __init__(self, app: ASGIApp, gateway: Gateway) -> None:
        super().__init__(app)
        self.gateway = gateway

    async def http(self, scope: Scope, receive: Callable[[], Awaitable[Message]],
                   send: Callable[[Message], Awaitable[None]]) -> None:  # fmt: skip
        self.gateway.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.gateway.in_flight -= 1


class Gateway:
    """State shared by the routes: verifier, limiter, models, audit, metrics."""

    def __init__(self, config: GatewayConfig) -> None:
        from secmlops.evidence.signing import PublicKeyTrust
        from secmlops.store.db import home_database_url, open_database
        from secmlops.store.registry import open_registry, signature_verifier

        self.config = config
        self.verifier = TokenVerifier([load_verify_key(p) for p in config.token_keys], issuer=config.issuer,
                                      audience=config.audience, max_ttl=config.max_token_ttl,
                                      leeway=config.clock_skew)  # fmt: skip
        self.limiter = Limiter(LimitSettings(**config.limits.model_dump()))
        self.engine = open_database(home_database_url(config.home))
        self.registry = open_registry(config.home, signature_verifier(PublicKeyTrust(config.trust_key)),
                                      engine=self.engine)  # fmt: skip
        self.audit_writer = AuditWriter(
            self.engine, durable=config.audit_durability == "power-loss"
        )
        self.models = LoadResult()
        self.extraction = ExtractionMonitor(prada_threshold=config.extraction.prada_threshold,
                                            block=config.extraction.action == "block")  # fmt: skip
        self.chat_limits = ChatLimits(config.chat.max_tokens, config.chat.max_top_logprobs)
        self.breaker = CircuitBreaker(config.chat.breaker_failures, config.chat.breaker_cooldown)
        self.redact = make_redactor() if config.chat.redact_output else None
        self.injection_classifier: EmbeddingClassifier | None = None
        if config.chat.injection.classifier:  # loaded now: a missing extra stops the start
            from secmlops.serve.injection_classifier import EmbeddingClassifier

            self.injection_classifier = EmbeddingClassifier()
        self.metrics = CollectorRegistry()
        self.requests = Counter("secmlops_gateway_requests", "Requests by route and status",
                                ["route", "status"], registry=self.metrics)  # fmt: skip
        self.latency = Histogram("secmlops_gateway_latency_seconds", "Request latency", ["route"],
                                 registry=self.metrics)  # fmt: skip
        self.predict_ok = self.requests.labels("predict", "200")  # the hot path's children, once
        self.predict_latency = self.latency.labels("predict")
        self.in_flight = 0  # HTTP requests being served (CountInFlight)
        self.shield = Counter("secmlops_gateway_shield_actions", "Shield actions", ["shield", "action"],
                              registry=self.metrics)  # fmt: skip
        self.loaded = Gauge(
            "secmlops_gateway_models_loaded", "Models being served", registry=self.metrics
        )
        writer = self.audit_writer
        Gauge("secmlops_gateway_audit_commits", "Audit transactions committed (group commit)",
              registry=self.metrics).set_function(lambda: writer.batches)  # fmt: skip
        Gauge("secmlops_gateway_audit_records", "Audit records committed",
              registry=self.metrics).set_function(lambda: writer.records)  # fmt: skip
        Gauge("secmlops_gateway_audit_inline_commits", "Audit commits made by a request served alone, "
              "without the writer thread", registry=self.metrics).set_function(lambda: writer.inline)  # fmt: skip
        self.monitor = Monitor(config, self.metrics, self.audit_sync)
        self.chat_budget = (
            CostBudget(config.chat.budget.limit, config.chat.budget.window)
            if config.chat.budget is not None
            else None
        )

    def load(self) -> None:
        entries = [ModelEntry(m.name, m.ref, tuple(m.tenants)) for m in self.config.models]
        self.models = load_models(self.registry, entries)
        self.loaded.set(len(self.models.loaded))
        for model in self.models.loaded.values():
            self.extraction.threshold(len(model.features))  # calibrate now, not on a request
            self.monitor.add_model(model.name, model.features)
        self.monitor.watch_chat(self.breaker)
        for name, model in self.models.loaded.items():
            self.audit_sync(
                "gateway", "model-load", name, {"version": model.version, "status": "loaded"}
            )
        for name, reason in self.models.refused.items():
            self.audit_sync("gateway", "model-refused", name, {"reason": reason})

    def audit_sync(self, actor: str, action: str, subject: str, payload: dict[str, Any]) -> None:
        self.audit_writer.write_sync(actor, action, subject, payload)

    async def audit(self, actor: str, action: str, subject: str, payload: dict[str, Any]) -> None:
        """Returns once the record is committed (group commit with concurrent requests)."""
        await self.audit_writer.write(actor, action, subject, payload, alone=self.alone)

    def alone(self) -> bool:
        """No other HTTP request is being served."""
        return self.in_flight <= 1


def create_app(config: GatewayConfig) -> FastAPI:
    gw = Gateway(config)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(gw.load)
        # Everything imported and loaded so far lives as long as the process: out of the
        # collector's sight, a full collection no longer walks it (pauses of several ms).
        gc.collect()
        gc.freeze()
        gw.monitor.start()
        yield
        await run_in_threadpool(gw.monitor.stop)
        gw.audit_writer.close()

    app = FastAPI(title="secmlops gateway", version="1", lifespan=lifespan)
    app.state.gateway = gw

    @app.exception_handler(TokenRejected)
    async def _unauthorized(request: Request, exc: TokenRejected) -> JSONResponse:
        await gw.audit("anonymous", "authn-refused", request.url.path, {"reason": exc.message})
        return JSONResponse({"detail": exc.message}, 401, headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(StoreError)
    async def _unaudited(_request: Request, exc: StoreError) -> JSONResponse:
        # Fail closed: a request whose audit record cannot be committed gets no answer.
        return JSONResponse({"detail": "audit log unavailable"}, 503)

    @app.exception_handler(LimitStoreUnavailable)
    async def _unlimited(_request: Request, exc: LimitStoreUnavailable) -> JSONResponse:
        return JSONResponse({"detail": exc.message}, 503, headers={"Retry-After": "5"})

    @app.exception_handler(Exceeded)
    async def _limited(_request: Request, exc: Exceeded) -> JSONResponse:
        return JSONResponse(
            {"detail": exc.message}, 429, headers={"Retry-After": str(exc.retry_after)}
        )

    @app.exception_handler(GatewayError)
    async def _invalid(_request: Request, exc: GatewayError) -> JSONResponse:
        return JSONResponse({"detail": exc.message}, 422)

    async def identity(request: Request) -> Identity:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise TokenRejected("missing bearer token")
        return gw.verifier.verify(token.strip())

    def model_for(name: str, who: Identity) -> TabularModel:
        model = gw.models.loaded.get(name)
        if model is None or who.tenant not in model.tenants:
            # The same answer whether the model is absent or another tenant's: nothing leaks.
            raise HTTPException(404, "no such model")
        if not who.may(f"model:{name}:predict"):
            raise HTTPException(403, f"token lacks scope model:{name}:predict")
        return model

    # The hot path does FastAPI's per-request work itself: parameters and dependencies resolved
    # by hand (FastAPI's resolution cost ~0.15 ms a request), the JSONResponse built directly
    # (FastAPI would validate and re-encode the dictionary against the response model, which
    # stays for the docs).
    @app.post("/v1/models/{name}/predict", responses=ERRORS, openapi_extra=PREDICT_BODY,
              response_model=dict[str, Any])  # fmt: skip
    async def predict(request: Request) -> Response:
        started = time.perf_counter()
        name: str = request.path_params["name"]
        who = await identity(request)
        actor = f"{who.tenant}/{who.subject}"
        gw.monitor.requests += 1
        try:
            model = model_for(name, who)
            await gw.limiter.check_request(who.tenant, who.subject, name)
            try:
                body = await request.json()
            except ValueError as exc:
                raise GatewayError("body is not JSON") from exc
            matrix = model.validate(body)
            if config.extraction.enabled:
                verdict = gw.extraction.observe(actor, (matrix - model.mean) / model.scale)
                if verdict.action != "allow":
                    gw.shield.labels("extraction", verdict.action).inc()
                    await gw.audit(
                        actor, f"extraction-{verdict.action}", name, {"reason": verdict.reason}
                    )
                    gw.monitor.alert(f"extraction-{verdict.action}", f"{name}:{actor}",
                                     {"model": name, "actor": actor, "reason": verdict.reason})  # fmt: skip
                    if verdict.action == "block":
                        raise HTTPException(429, f"suspected model extraction: {verdict.reason}",
                                            headers={"Retry-After": "3600"})  # fmt: skip
            guard = gw.monitor.guards[name]
            if not guard.breaker.allow():
                guard.observe(matrix, None)  # inputs still show whether the drift has cleared
                raise HTTPException(503, f"model circuit open ({', '.join(sorted(guard.breaker.holds)) or 'errors'})",
                                    headers={"Retry-After": str(guard.breaker.retry_after())})  # fmt: skip
            if guard.budget is not None and guard.budget.spend(len(matrix)):
                await run_in_threadpool(gw.monitor.hold, name, guard.breaker, "budget",
                                        guard.budget.remaining_window(), {"limit": guard.budget.limit})  # fmt: skip
                raise HTTPException(503, "model circuit open (budget)",
                                    headers={"Retry-After": str(guard.breaker.retry_after())})  # fmt: skip
            try:
                predictions = model.predict(matrix)
            except Exception as exc:  # a failing model counts towards its circuit breaker
                if guard.breaker.record(False):
                    await gw.audit("gateway", "circuit-open", name,
                                   {"reason": "errors", "consecutive_failures": guard.breaker.consecutive})  # fmt: skip
                    gw.monitor.alert("circuit-open", name, {"reason": "errors"})
                await gw.audit(actor, "model-error", name, {"error": type(exc).__name__})
                raise HTTPException(503, "model failed", headers={"Retry-After": "5"}) from exc
            guard.breaker.record(True)
            if guard.drift is not None:
                guard.observe(matrix, [p["score"] for p in predictions])
            result = {"model": name, "version": model.version, "predictions": predictions}
            await gw.audit(actor, "predict", f"{name}@{model.version}",
                           {"input_sha256": _sha256(body), "output_sha256": _sha256(predictions),
                            "rows": len(predictions)})  # fmt: skip
            gw.predict_ok.inc()
            return JSONResponse(result)
        except HTTPException as exc:
            gw.requests.labels("predict", str(exc.status_code)).inc()
            await gw.audit(
                actor,
                "predict-refused",
                name,
                {"status": exc.status_code, "reason": str(exc.detail)},
            )
            raise
        except Exceeded:
            gw.requests.labels("predict", "429").inc()
            await gw.audit(actor, "limit", name, {"status": 429})
            raise
        except LimitStoreUnavailable:
            gw.requests.labels("predict", "503").inc()
            await gw.audit(actor, "limit-store-unavailable", name, {"status": 503})
            raise
        except GatewayError as exc:
            gw.requests.labels("predict", "422").inc()
            await gw.audit(actor, "predict-invalid", name, {"status": 422, "reason": exc.message})
            raise
        finally:
            gw.predict_latency.observe(time.perf_counter() - started)

    async def trip(ok: bool) -> None:
        if gw.breaker.record(ok):
            gw.shield.labels("circuit-breaker", "open").inc()
            await gw.audit("gateway", "circuit-open", "chat",
                           {"consecutive_failures": gw.breaker.consecutive, "cooldown": gw.breaker.cooldown})  # fmt: skip
            gw.monitor.alert("circuit-open", "chat", {"reason": "errors"})

    def injection_verdicts(texts: list[str]) -> list[Any]:
        """Pattern verdicts, raised by the embedding classifier's probability when it is on."""
        limits = config.chat.injection
        verdicts = [score_injection(t, flag_at=limits.flag_at, block_at=limits.block_at)
                    for t in texts]  # fmt: skip
        if gw.injection_classifier is None:
            return verdicts
        from secmlops.serve.injection_classifier import combine_injection

        probabilities = gw.injection_classifier.scores([normalize_text(t)[0] for t in texts])
        return [combine_injection(v, p, flag_at=limits.flag_at, block_at=limits.block_at)
                for v, p in zip(verdicts, probabilities, strict=True)]  # fmt: skip

    @app.post("/v1/chat/completions", responses=ERRORS, openapi_extra=chat_body(gw.chat_limits))
    async def chat(request: Request, who: Identity = Depends(identity)) -> JSONResponse:
        import httpx

        actor = f"{who.tenant}/{who.subject}"
        gw.monitor.requests += 1
        if who.tenant not in config.chat.tenants or not (who.may("chat")):
            raise HTTPException(403, "token lacks scope chat for this tenant")
        if not config.chat.upstream_url:
            raise HTTPException(404, "no upstream model configured")
        try:
            body = await request.json()
        except ValueError as exc:
            raise GatewayError("body is not JSON") from exc
        if not isinstance(body, dict):
            raise GatewayError("body must be a JSON object")
        check_chat_parameters(body, gw.chat_limits)
        await gw.limiter.check_request(who.tenant, who.subject, "chat")
        texts = [m.get("content", "") for m in body["messages"]]
        budget = sum(len(t) for t in texts) // 4 + int(
            body.get("max_tokens") or body.get("max_completion_tokens") or 256
        )
        await gw.limiter.check_tokens(who.tenant, who.subject, budget)
        worst = max(injection_verdicts(texts), key=lambda v: v.score)
        prompt_hash = _sha256(body["messages"])
        if worst.action != "allow":
            gw.shield.labels("prompt-injection", worst.action).inc()
            await gw.audit(actor, f"injection-{worst.action}", "chat",
                           {"prompt_sha256": prompt_hash, "score": worst.score})  # fmt: skip
        if worst.action == "block":
            gw.requests.labels("chat", "400").inc()
            return JSONResponse(
                {"detail": "refused: prompt injection suspected", "score": worst.score}, 400
            )
        forwarded = {**body, "messages": [{**m, "content": normalize_text(m.get("content", ""))[0]}
                                          for m in body["messages"]]}  # fmt: skip
        headers = {}
        if config.chat.upstream_api_key_env and os.environ.get(config.chat.upstream_api_key_env):
            headers["Authorization"] = f"Bearer {os.environ[config.chat.upstream_api_key_env]}"
        # `state`, not `allow()`: asking must not use up the half-open circuit's one trial request
        if (
            gw.chat_budget is not None
            and gw.breaker.state != "open"
            and gw.chat_budget.spend(budget)
        ):
            await run_in_threadpool(gw.monitor.hold, "chat", gw.breaker, "budget",
                                    gw.chat_budget.remaining_window(), {"limit": gw.chat_budget.limit})  # fmt: skip
        if not gw.breaker.allow():
            gw.requests.labels("chat", "503").inc()
            await gw.audit(actor, "circuit-open-refused", "chat", {"prompt_sha256": prompt_hash})
            return JSONResponse({"detail": "upstream model circuit open"}, 503,
                                headers={"Retry-After": str(gw.breaker.retry_after())})  # fmt: skip
        try:
            async with httpx.AsyncClient(timeout=config.chat.timeout) as client:
                upstream = await client.post(config.chat.upstream_url.rstrip("/") + "/v1/chat/completions",
                                             json=forwarded, headers=headers)  # fmt: skip
            answer = upstream.json()
        except (httpx.HTTPError, ValueError) as exc:
            gw.requests.labels("chat", "502").inc()
            await gw.audit(actor, "upstream-error", "chat", {"error": type(exc).__name__})
            await trip(ok=False)
            return JSONResponse({"detail": "upstream model unavailable"}, 502)
        await trip(ok=upstream.status_code < 500)
        redacted: list[str] = []
        if gw.redact is not None and isinstance(answer, dict):
            for choice in answer.get("choices", []):
                message = choice.get("message") if isinstance(choice, dict) else None
                if isinstance(message, dict) and isinstance(message.get("content"), str):
                    message["content"], found = gw.redact(message["content"])
                    redacted += found
        if redacted:
            gw.shield.labels("output-redaction", "redact").inc()
        await gw.audit(actor, "chat", "chat", {"prompt_sha256": prompt_hash, "output_sha256": _sha256(answer),
                                               "redacted": sorted(set(redacted)), "flagged": worst.action == "flag"})  # fmt: skip
        gw.requests.labels("chat", str(upstream.status_code)).inc()
        headers_out = {"X-Secmlops-Flagged": "prompt-injection"} if worst.action == "flag" else {}
        return JSONResponse(
            answer, upstream.status_code if upstream.status_code < 500 else 502, headers=headers_out
        )

    @app.get("/admin/models", responses=ERRORS)
    async def admin_models(who: Identity = Depends(identity)) -> dict[str, Any]:
        if "admin" not in who.scopes:
            raise HTTPException(403, "admin scope required")
        mine = {m.name for m in config.models if who.tenant in m.tenants}
        return {
            "loaded": {n: {"version": m.version, "features": list(m.features),
                           **gw.monitor.guards[n].describe()}
                       for n, m in gw.models.loaded.items() if n in mine},
            "refused": {n: r for n, r in gw.models.refused.items() if n in mine},
        }  # fmt: skip

    @app.post("/admin/models/{name}/reset", responses=ERRORS)
    async def admin_reset(name: str, who: Identity = Depends(identity)) -> dict[str, Any]:
        """Close the model's circuit (errors, drift, budget) and restart its drift window."""
        if "admin" not in who.scopes:
            raise HTTPException(403, "admin scope required")
        guard = gw.monitor.guards.get(name)
        if guard is None or who.tenant not in gw.models.loaded[name].tenants:
            raise HTTPException(404, "no such model")
        was = gw.monitor.reset(guard)
        await gw.audit(f"{who.tenant}/{who.subject}", "circuit-reset", name, {"was": was})
        return {"model": name, **guard.describe()}

    @app.get("/admin/host", responses=ERRORS)
    async def admin_host(who: Identity = Depends(identity)) -> dict[str, Any]:
        """The host monitor's state (CPU, GPU availability, busy-while-idle verdicts)."""
        if "admin" not in who.scopes:
            raise HTTPException(403, "admin scope required")
        return gw.monitor.describe_host()

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "models": len(gw.models.loaded)}

    @app.get("/metrics", response_class=PlainTextResponse,
             responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}})  # fmt: skip
    async def metrics() -> Response:
        return Response(generate_latest(gw.metrics), media_type=CONTENT_TYPE_LATEST)

    # Outermost: the size cap applies before any route or dependency reads the body.
    app.add_middleware(BodyLimit, max_bytes=config.max_body_bytes)
    app.add_middleware(CountInFlight, gateway=gw)
    return app
