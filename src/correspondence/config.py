"""One validated Settings object, read from CORRESPONDENCE_* environment variables."""

from __future__ import annotations

import ipaddress
from datetime import time
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from correspondence.kit.numbers import parse_int

DEV_ISSUER = "https://platform.altinn.localhost/authentication/api/v1/openid/"


class TrustedIssuer(BaseModel):
    """An issuer whose tokens we accept; keys come from a JWKS URL or a local JWKS/PEM file."""

    issuer: str
    jwks_url: str | None = None
    key_file: Path | None = None
    # "altinn" tokens carry Altinn scopes directly; "maskinporten" tokens need altinn:serviceowner too.
    kind: Literal["altinn", "maskinporten"] = "altinn"
    # When set, tokens must carry an `aud` naming one of these (the reference checks no audience).
    audience: str | list[str] | None = None

    @model_validator(mode="after")
    def _one_key_source(self) -> TrustedIssuer:
        if (self.jwks_url is None) == (self.key_file is None):
            raise ValueError("a trusted issuer needs exactly one of jwks_url or key_file")
        return self


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CORRESPONDENCE_", extra="ignore")

    mode: Literal["development", "production"] = "development"
    # Development mode (dev issuer, dev sign-in, relaxed webhook checks) serves loopback only and
    # refuses trusted issuers; this opts out of both, loudly logged (README "Security").
    allow_insecure_development: bool = False
    database_url: str | None = None
    data_dir: Path = Path(".correspondence")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    base_url: str | None = None

    db_pool_size: int = Field(5, ge=1, le=100)
    # `serve` runs the job worker beside the API: it gets connections of its own, so that under
    # load it does not queue behind every request for each of its statements (and fall behind).
    worker_db_pool_size: int = Field(2, ge=1, le=100)
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    # The web pages' forms (sign-in, actions, the inbox's bulk action with up to 200 ids ≈ 9 KB).
    max_form_bytes: int = Field(64 * 1024, ge=1024)

    trusted_issuers: list[TrustedIssuer] = []
    dev_issuer: str = DEV_ISSUER
    dev_token_lifetime_seconds: int = Field(24 * 3600, ge=60)

    worker_poll_seconds: float = Field(0.5, gt=0)
    worker_batch_size: int = Field(100, ge=1, le=10000)
    # A claimed job's lease, kept alive by the worker's heartbeat (every lease/3) while it runs: a
    # worker killed outright has its jobs taken again by another after at most this long.
    job_lease_seconds: float = Field(15.0, ge=1)
    # On SIGTERM a worker finishes its running batch for at most this long, then rolls it back;
    # either way it releases its unfinished jobs at once (README "Processes and shutdown").
    worker_shutdown_seconds: float = Field(10.0, ge=0)
    job_max_attempts: int = Field(10, ge=1)
    # Housekeeping: finished jobs and expanded outbox rows are deleted after these many hours.
    job_retention_hours: float = Field(168.0, ge=0)
    outbox_retention_hours: float = Field(24.0, ge=0)

    reminder_delay_days: int = Field(7, ge=0)
    # Batches (README "Batches"): recipients per chunk the worker creates with one Initialize.
    batch_chunk_size: int = Field(1000, ge=2, le=10000)

    # Notifications (README "Notifications"): SMTP for e-mail and an HTTP gateway for SMS; with
    # neither configured, messages are written under <data_dir>/outbox for developers to read.
    smtp_host: str | None = None
    smtp_port: int = Field(25, ge=1, le=65535)
    smtp_tls: Literal["none", "starttls", "tls"] = "starttls"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "noreply@correspondence.localhost"
    smtp_connections: int = Field(16, ge=1, le=256)  # kept open and used concurrently
    smtp_timeout_seconds: float = Field(30.0, gt=0)
    smtp_validate_certs: bool = True
    sms_gateway_url: str | None = None
    sms_gateway_token: SecretStr | None = None
    sms_sender: str | None = "Altinn"
    sms_timeout_seconds: float = Field(10.0, gt=0)
    sms_window_start: time = time(9, 0)  # SMS only go out between start and end, local time
    sms_window_end: time = time(17, 0)
    sms_timezone: str = "Europe/Oslo"
    notification_max_attempts: int = Field(8, ge=1)  # per address, then *_Failed
    notification_retry_seconds: float = Field(60.0, gt=0)  # first retry; doubles, at most 1 hour
    # A forwarded correspondence's e-mail carries its attachments while their total stays within
    # this; the rest are named in a note saying they are in the inbox (README "Forward").
    forward_attachments_max_bytes: int = Field(10_000_000, ge=0)

    # Events (README "Events"): outbox expansion and webhook delivery to subscribers.
    events_batch_size: int = Field(500, ge=1, le=10000)  # outbox rows per dispatch transaction
    webhook_batch_size: int = Field(500, ge=1, le=10000)  # deliveries claimed per round
    webhook_concurrency: int = Field(64, ge=1, le=1000)  # POSTs in flight at once
    webhook_timeout_seconds: float = Field(10.0, gt=0)
    webhook_max_attempts: int = Field(12, ge=1)  # then the delivery is Failed
    webhook_backoff_seconds: float = Field(2.0, gt=0)  # first retry; doubles, at most 1 hour
    metrics_enabled: bool = True  # GET /metrics (Prometheus text format)
    # With a token, /metrics needs `Authorization: Bearer <token>`; production mode needs one (or
    # metrics off). The database figures are read at most once per metrics_cache_seconds per process.
    metrics_token: SecretStr | None = None
    metrics_cache_seconds: float = Field(10.0, ge=0)

    # Attachments: where blobs live, the malware scanner, and upload limits (README "Attachments").
    storage: Literal["file", "s3"] = "file"
    storage_dir: Path | None = None  # file store root; default <data_dir>/blobs
    s3_endpoint: str | None = None  # e.g. http://127.0.0.1:9000 (MinIO, Ceph); unset = AWS
    s3_bucket: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    s3_region: str = "us-east-1"
    s3_prefix: str = ""  # key prefix inside the bucket
    clamd_address: str | None = None  # /path/clamd.sock, unix:///path, tcp://host:port or host:port
    clamd_timeout_seconds: float = Field(300.0, gt=0)
    # None: scan when clamd_address is set (production requires it); "off": never scan, by choice.
    malware_scan: Literal["on", "off"] | None = None
    # A file whose scan could not be made (clamd unreachable, timing out) for this long is failed
    # "Malware scan failed: scanner unavailable", so it can be uploaded again.
    scan_give_up_hours: float = Field(24.0, gt=0)
    max_upload_bytes: int = Field(50_000_000_000, ge=1)  # POST /attachment/{id}/upload
    max_inline_file_bytes: int = Field(2_000_000_000, ge=1)  # each file of POST /correspondence/upload
    upload_idle_timeout_seconds: float = Field(120.0, gt=0)  # no data for this long → 408 (2022)
    # GET …/attachments/downloadall (the reference's GeneralSettings.EnableDownloadAll; off → 404),
    # and the most bytes of attachments one zip may hold (more → 400, 2023).
    download_all_enabled: bool = True
    download_all_max_bytes: int = Field(2_000_000_000, ge=1)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    access_log: bool = True

    # Sandbox outcomes (README "Sandbox"): reserved addresses and parties that behave in a known
    # way. None: on in development mode, off in production; true/false: as said.
    sandbox: bool | None = None
    # Per-owner limits (README "Per-owner limits"); 0 is off. Requests per minute per service
    # owner (a token bucket per API process), and notifications an owner may order per day.
    # Overrides are JSON objects {"<org number>": n}; an override of 0 exempts that owner.
    rate_limit_per_minute: int = Field(0, ge=0)
    rate_limit_overrides: dict[str, int] = {}
    daily_notification_cap: int = Field(0, ge=0)
    daily_notification_cap_overrides: dict[str, int] = {}
    limits_timezone: str = "Europe/Oslo"  # where the daily cap's day begins and ends

    @model_validator(mode="after")
    def _production_needs_issuer(self) -> Settings:
        if self.mode == "production" and not self.trusted_issuers:
            raise ValueError(
                "production mode needs CORRESPONDENCE_TRUSTED_ISSUERS (the development issuer is off)"
            )
        return self

    @model_validator(mode="after")
    def _development_has_no_trusted_issuers(self) -> Settings:
        if self.mode == "development" and self.trusted_issuers and not self.allow_insecure_development:
            raise ValueError(
                "development mode (anyone may sign in as anyone) does not run with "
                "CORRESPONDENCE_TRUSTED_ISSUERS set: choose CORRESPONDENCE_MODE=production, or "
                "CORRESPONDENCE_ALLOW_INSECURE_DEVELOPMENT=true if you really want both"
            )
        return self

    @model_validator(mode="after")
    def _malware_scan_chosen(self) -> Settings:
        if self.malware_scan == "on" and not self.clamd_address:
            raise ValueError("CORRESPONDENCE_MALWARE_SCAN=on needs CORRESPONDENCE_CLAMD_ADDRESS")
        if self.mode == "production" and self.malware_scan is None and not self.clamd_address:
            raise ValueError(
                "production mode needs a malware scanner: set CORRESPONDENCE_CLAMD_ADDRESS, or "
                "CORRESPONDENCE_MALWARE_SCAN=off to publish uploads unscanned"
            )
        return self

    @model_validator(mode="after")
    def _production_needs_metrics_token(self) -> Settings:
        if self.mode == "production" and self.metrics_enabled and self.metrics_token is None:
            raise ValueError(
                "production mode serves /metrics only with a token: set CORRESPONDENCE_METRICS_TOKEN "
                "(scrapers send Authorization: Bearer <token>) or CORRESPONDENCE_METRICS_ENABLED=false"
            )
        return self

    @field_validator("metrics_token")
    @classmethod
    def _blank_token_is_none(cls, value: SecretStr | None) -> SecretStr | None:
        return None if value is None or not value.get_secret_value().strip() else value

    @model_validator(mode="after")
    def _s3_needs_bucket(self) -> Settings:
        if self.storage == "s3" and not self.s3_bucket:
            raise ValueError("CORRESPONDENCE_STORAGE=s3 needs CORRESPONDENCE_S3_BUCKET")
        return self

    @field_validator("clamd_address")
    @classmethod
    def _clamd_address(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        v = value.strip()
        if v.startswith(("/", "unix:")):
            return v
        host, sep, port = v.removeprefix("tcp://").rpartition(":")
        if not sep or not host or parse_int(port, 1, 65535, signed=False) is None:
            raise ValueError("must be a socket path (/path, unix:///path) or host:port (tcp://host:port)")
        return v

    @field_validator("rate_limit_overrides", "daily_notification_cap_overrides")
    @classmethod
    def _per_owner(cls, value: dict[str, int]) -> dict[str, int]:
        for org, limit in value.items():
            if len(org) != 9 or not org.isascii() or not org.isdigit():
                raise ValueError(f"keys must be organisation numbers (9 digits), not {org!r}")
            if limit < 0:
                raise ValueError(f"limits must be 0 (no limit) or more, not {limit} for {org}")
        return value

    @field_validator("sms_timezone", "limits_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @property
    def blob_dir(self) -> Path:
        return self.storage_dir or self.data_dir / "blobs"

    @property
    def min_attachment_expiration_days(self) -> int:
        """expirationInDays floor: 14 in production, 1 elsewhere (api.md §6.3.1, error 2017)."""
        return 14 if self.mode == "production" else 1

    @property
    def dev_issuer_enabled(self) -> bool:
        return self.mode == "development"

    @property
    def sandbox_enabled(self) -> bool:
        """The sandbox's reserved values act as documented (else they are ordinary values)."""
        return self.mode == "development" if self.sandbox is None else self.sandbox

    @property
    def scan_address(self) -> str | None:
        """The clamd to scan uploads with, or None when no scan is made."""
        return None if self.malware_scan == "off" else self.clamd_address

    def development_refusal(self) -> str | None:
        """Why development mode may not serve on `host`, or None when it may (README "Security")."""
        if self.mode != "development" or self.allow_insecure_development or is_loopback(self.host):
            return None
        return (
            f"development mode (anyone may sign in as anyone) serves only on loopback, not on {self.host}: "
            "set CORRESPONDENCE_MODE=production with CORRESPONDENCE_TRUSTED_ISSUERS, or "
            "CORRESPONDENCE_ALLOW_INSECURE_DEVELOPMENT=true to expose development mode anyway"
        )

    @property
    def public_base_url(self) -> str:
        return self.base_url or f"http://{self.host}:{self.port}"


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or `localhost`; a wildcard (0.0.0.0, ::) or any other address is not."""
    name = host.strip().strip("[]").lower()
    if name in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@lru_cache
def get_settings() -> Settings:
    return Settings()
