"""create_app(): routers, middleware, error handlers — the composition root."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from enum import Enum
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from pydantic import BaseModel, TypeAdapter
from starlette.exceptions import HTTPException as StarletteHTTPException

from correspondence.attachment import jobs as attachment_jobs
from correspondence.attachment import schemas as attachment_schemas
from correspondence.attachment.endpoints import router as attachment_router
from correspondence.auth.endpoints import router as auth_router
from correspondence.auth.tokens import DevIssuer, TokenValidator
from correspondence.batch import jobs as batch_jobs
from correspondence.batch import schemas as batch_schemas
from correspondence.batch.endpoints import router as batch_router
from correspondence.config import Settings
from correspondence.correspondence import jobs as correspondence_jobs
from correspondence.correspondence import schemas
from correspondence.correspondence.endpoints import resolve_fast
from correspondence.correspondence.endpoints import router as correspondence_router
from correspondence.events import jobs as events_jobs
from correspondence.events.endpoints import router as events_router
from correspondence.health.endpoints import router as health_router
from correspondence.kit.db import create_pool
from correspondence.kit.errors import (
    ApiError,
    FieldError,
    PlainError,
    ValidationProblem,
    problem_response,
    render_error,
    validation_response,
)
from correspondence.kit.fastpath import FastRoutes
from correspondence.kit.housekeeping import Housekeeping
from correspondence.kit.jobs import Worker, every
from correspondence.kit.logs import trace_id_var
from correspondence.kit.middleware import RequestContext
from correspondence.kit.outage import (
    DatabaseUnavailable,
    RequestOutages,
    is_database_unavailable,
    unavailable_response,
)
from correspondence.limits import jobs as limits_jobs
from correspondence.limits.collector import RejectionCollector
from correspondence.limits.endpoints import router as limits_router
from correspondence.limits.setup import Limits
from correspondence.metrics.collector import Exposition
from correspondence.metrics.endpoints import router as metrics_router
from correspondence.notification import jobs as notification_jobs
from correspondence.notification.endpoints import router as notification_router
from correspondence.recall.endpoints import router as recall_router
from correspondence.sandbox.endpoints import router as sandbox_router
from correspondence.services import Services
from correspondence.web.endpoints import router as web_router

log = logging.getLogger("correspondence")

# Request models documented under their official names (bodies are parsed from raw bytes).
_DOCUMENTED_MODELS: list[type[BaseModel]] = [
    schemas.InitializeCorrespondencesExt,
    attachment_schemas.InitializeAttachmentExt,
    schemas.ForwardCorrespondenceRequestExt,
    batch_schemas.InitializeBatchExt,
    batch_schemas.BatchRecipientsPageExt,
]
# Enums that only hand-parsed query parameters refer to (by `$ref`).
_DOCUMENTED_ENUMS: list[type[Enum]] = [schemas.CorrespondencesRoleType]


# Full collections only after this many collections of the middle generation (CPython's default: 10).
FULL_COLLECTION_AFTER = 100


def freeze_startup_objects() -> None:
    """Everything start-up built (modules, routes, models, the pool) lives as long as the process.
    Moved out of the collector's sight (`gc.freeze`), a full collection no longer walks those
    ~100,000 objects, which took 30-65 ms with every request in flight waiting (bench/RESULTS.md,
    the p99 of Initialize). Once per process: later apps (tests) add nothing to the frozen set.

    What is built later (the token cache's callers, statement caches) still is walked by every full
    collection: 6-18 ms each. Requests that wait for a commit (an overview for its Fetched row)
    live through young collections, so their objects reach the oldest generation and called a full
    collection every ~1.5 s under load; at most one in FULL_COLLECTION_AFTER middle ones cuts that
    tenfold. Objects freed by reference counting (almost all of a request's) never wait for it."""
    if gc.get_freeze_count() == 0:
        gc.collect()
        gc.freeze()
        young, middle, _ = gc.get_threshold()
        gc.set_threshold(young, middle, FULL_COLLECTION_AFTER)


def build_worker(services: Services, pool: asyncpg.Pool | None = None) -> Worker:
    """`pool`: the connections the worker claims and runs its jobs on (default: the services')."""
    s = services.settings
    worker = Worker(
        pool or services.pool,
        poll_seconds=s.worker_poll_seconds,
        batch_size=s.worker_batch_size,
        lease_seconds=s.job_lease_seconds,
        max_attempts=s.job_max_attempts,
        shutdown_seconds=s.worker_shutdown_seconds,
    )
    correspondence_jobs.register(worker, services)
    notification_jobs.register(worker, services)
    attachment_jobs.register(worker, services)
    events_jobs.register(worker, services)
    batch_jobs.register(worker, services)
    limits_jobs.register(worker, services)
    keeper = Housekeeping(
        services.pool,
        keep_jobs=timedelta(hours=s.job_retention_hours),
        keep_outbox=timedelta(hours=s.outbox_retention_hours),
    )
    worker.add_poller("housekeeping", every(60, keeper.run_now))
    return worker


def create_app(settings: Settings, database_url: str, *, run_worker: bool = True) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.mode == "development" and settings.allow_insecure_development:
            log.warning(
                "INSECURE: development mode with CORRESPONDENCE_ALLOW_INSECURE_DEVELOPMENT=true: "
                "anyone who reaches this service can sign in as any person or organisation"
            )
        pool = await create_pool(database_url, settings.db_pool_size)
        dev_issuer = (
            DevIssuer(settings.dev_issuer, settings.data_dir, settings.dev_token_lifetime_seconds)
            if settings.dev_issuer_enabled
            else None
        )
        services = Services(settings, pool, TokenValidator(settings, dev_issuer), dev_issuer)
        await services.open_adapters()
        app.state.services = services
        task: asyncio.Task[None] | None = None
        worker_pool: asyncpg.Pool | None = None
        if run_worker:
            worker_pool = await create_pool(database_url, settings.worker_db_pool_size, generic_plans=False)
            services.worker = build_worker(services, worker_pool)
            task = asyncio.create_task(services.worker.run())
        freeze_startup_objects()
        try:
            yield
        finally:
            if task is not None and services.worker is not None:
                services.worker.stop()  # it finishes or releases its jobs within its shutdown time
                with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                    await asyncio.wait_for(task, settings.worker_shutdown_seconds + 10)
            await services.close_messaging()
            await services.close_webhooks()
            if worker_pool is not None:
                await worker_pool.close()
            await pool.close()

    app = FastAPI(
        title="Altinn.Correspondence.API",
        version="1.0.0",
        lifespan=lifespan,
        docs_url="/correspondence/api/v1/swagger/index.html",
        openapi_url="/correspondence/api/v1/swagger/v1/swagger.json",
        redoc_url=None,
    )
    app.include_router(correspondence_router)
    app.include_router(attachment_router)
    app.include_router(notification_router)
    app.include_router(health_router)
    app.include_router(auth_router)
    app.include_router(web_router)
    app.include_router(events_router)
    app.include_router(metrics_router)
    app.include_router(recall_router)
    app.include_router(batch_router)
    # Our additions (issue 13), under /ext/api/v1: a prefix the real service does not use.
    app.include_router(sandbox_router)
    app.include_router(limits_router)
    _install_error_handlers(app)
    metrics = Exposition(cache_seconds=settings.metrics_cache_seconds)
    app.state.metrics = metrics

    def services_limits() -> Limits | None:
        services: Services | None = getattr(app.state, "services", None)
        return services.limits if services is not None else None

    metrics.registry.register(RejectionCollector(services_limits))
    # Added first = inside RequestContext, so the hot routes get the trace id, log line and headers.
    app.add_middleware(FastRoutes, resolvers=[resolve_fast])
    app.add_middleware(
        RequestContext,
        log_requests=settings.access_log,
        metrics=metrics.requests if settings.metrics_enabled else None,
    )

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, routes=app.routes)
            components = document.setdefault("components", {}).setdefault("schemas", {})
            for model in _DOCUMENTED_MODELS:
                schema = model.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
                components.update(schema.pop("$defs", {}))
                components[model.__name__] = schema
            for enum in _DOCUMENTED_ENUMS:
                components.setdefault(enum.__name__, TypeAdapter(enum).json_schema())
            for operations in document.get("paths", {}).values():
                for operation in operations.values():
                    # Invalid input answers 400 (the reference's validation problem), never 422.
                    operation.get("responses", {}).pop("422", None)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _install_error_handlers(app: FastAPI) -> None:
    async def _error_value(request: Request, exc: Exception) -> Response:
        rendered = render_error(exc, trace_id_var.get())
        assert rendered is not None  # registered only for the error values render_error knows
        return rendered

    for error_type in (ApiError, PlainError, ValidationProblem):
        app.add_exception_handler(error_type, _error_value)

    @app.exception_handler(RequestValidationError)
    async def _request_validation(request: Request, exc: RequestValidationError) -> Response:
        problem = ValidationProblem()
        for err in exc.errors():
            loc = [p for p in err.get("loc", ()) if p not in ("path", "query", "body", "header")]
            key = ".".join(str(p) for p in loc) or "$"
            value = err.get("input")
            if err.get("type") == "missing":
                message = f"The {key} field is required."
            elif isinstance(value, str):
                message = f"The value '{value}' is not valid."
            else:
                message = str(err.get("msg"))
            problem.errors.append(FieldError(key, message))
        return validation_response(problem, trace_id_var.get())

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        headers = dict(exc.headers) if exc.headers else None
        return problem_response(exc.status_code, str(exc.detail), trace_id_var.get(), headers=headers)

    outages = RequestOutages(log)
    app.state.outages = outages

    async def _database_error(request: Request, exc: Exception) -> Response:
        """503 + Retry-After while the database is away; any other error of these types is a bug
        and goes on to the 500 handler below."""
        if not is_database_unavailable(exc):
            raise exc
        outages.note(exc, request.method, request.url.path)
        return unavailable_response(trace_id_var.get())

    # Registered by type (not in the catch-all below, which Starlette re-raises to the server as a
    # crash): asyncpg.PostgresError covers the connection and shutdown errors.
    for database_error in (DatabaseUnavailable, asyncpg.PostgresError, asyncpg.InterfaceError):
        app.add_exception_handler(database_error, _database_error)

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(500, "", trace_id_var.get())
