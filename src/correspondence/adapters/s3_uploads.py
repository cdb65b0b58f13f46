"""The two S3 calls obstore does not offer: ListMultipartUploads and AbortMultipartUpload, so the
sweeper can abort the incomplete multipart uploads of writers that died (their parts are stored,
billed bytes that no object shows). Requests are signed with AWS Signature Version 4 by hand
(hashlib/hmac) and sent with aiohttp; path-style URLs for a configured endpoint (MinIO, Ceph,
moto), virtual-host style for AWS."""

from __future__ import annotations

import hashlib
import hmac
import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

import aiohttp
from yarl import URL

_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_TIMEOUT = aiohttp.ClientTimeout(total=60)


class S3RequestError(Exception):
    """S3 answered with an error, or could not be reached."""


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    @classmethod
    def find(cls, access_key_id: str | None, secret_access_key: str | None) -> Credentials | None:
        """The configured static keys, else the AWS_* variables; None when neither is there (an
        instance role: obstore can use it, this client cannot)."""
        if access_key_id and secret_access_key:
            return cls(access_key_id, secret_access_key)
        key, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
        if key and secret:
            return cls(key, secret, os.environ.get("AWS_SESSION_TOKEN") or None)
        return None


@dataclass(frozen=True)
class MultipartUpload:
    key: str
    upload_id: str
    initiated: datetime


def _uri_encode(value: str, *, keep_slash: bool = False) -> str:
    return quote(value, safe="-_.~/" if keep_slash else "-_.~")


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def sign(
    method: str,
    host: str,
    path: str,
    query: Mapping[str, str],
    credentials: Credentials,
    region: str,
    at: datetime,
) -> dict[str, str]:
    """The headers (Host included) of a bodiless S3 request signed with Signature Version 4.
    `path` is already URI-encoded."""
    amz_date = at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    headers = {"host": host, "x-amz-content-sha256": _EMPTY_SHA256, "x-amz-date": amz_date}
    if credentials.session_token:
        headers["x-amz-security-token"] = credentials.session_token
    names = sorted(headers)
    canonical = "\n".join(
        [
            method,
            path,
            canonical_query(query),
            *(f"{name}:{headers[name].strip()}" for name in names),
            "",
            ";".join(names),
            _EMPTY_SHA256,
        ]
    )
    scope = f"{amz_date[:8]}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + credentials.secret_access_key).encode()
    for part in (amz_date[:8], region, "s3", "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={credentials.access_key_id}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return headers


def canonical_query(query: Mapping[str, str]) -> str:
    pairs = sorted((_uri_encode(k), _uri_encode(v)) for k, v in query.items())
    return "&".join(f"{k}={v}" for k, v in pairs)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(element: ET.Element, name: str) -> str:
    for child in element:
        if _local(child.tag) == name:
            return child.text or ""
    return ""


def parse_listing(body: bytes) -> tuple[list[MultipartUpload], dict[str, str] | None]:
    """The uploads of one ListMultipartUploads page and the markers of the next (None: last).
    The answer comes from the configured bucket, but a document type declaration (entities) is
    refused all the same; ElementTree never fetches external entities."""
    if b"<!DOCTYPE" in body.upper():
        raise S3RequestError("refusing an XML answer with a document type declaration")
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise S3RequestError(f"unreadable ListMultipartUploads answer: {exc}") from exc
    uploads = []
    for element in root:
        if _local(element.tag) != "Upload":
            continue
        initiated = datetime.fromisoformat(_child(element, "Initiated").replace("Z", "+00:00"))
        if initiated.tzinfo is None:
            initiated = initiated.replace(tzinfo=UTC)
        uploads.append(MultipartUpload(_child(element, "Key"), _child(element, "UploadId"), initiated))
    if _child(root, "IsTruncated").lower() != "true":
        return uploads, None
    markers = {
        "key-marker": _child(root, "NextKeyMarker"),
        "upload-id-marker": _child(root, "NextUploadIdMarker"),
    }
    if not markers["key-marker"]:
        raise S3RequestError("a truncated ListMultipartUploads answer without NextKeyMarker")
    return uploads, markers


class MultipartUploads:
    """ListMultipartUploads and AbortMultipartUpload for one bucket."""

    def __init__(
        self,
        bucket: str,
        *,
        endpoint: str | None,
        region: str,
        credentials: Credentials,
        page_size: int | None = None,
    ) -> None:
        self._page = {"max-uploads": str(page_size)} if page_size else {}
        self._region = region
        self._credentials = credentials
        if endpoint:  # path style: http://host:port/bucket/key
            parts = urlsplit(endpoint.rstrip("/"))
            self._origin = f"{parts.scheme}://{parts.netloc}"
            self._host = parts.netloc
            self._base = parts.path + "/" + _uri_encode(bucket)
        elif "." in bucket:  # virtual-host style would not match AWS's certificate
            self._host = f"s3.{region}.amazonaws.com"
            self._origin = f"https://{self._host}"
            self._base = "/" + _uri_encode(bucket)
        else:
            self._host = f"{bucket}.s3.{region}.amazonaws.com"
            self._origin = f"https://{self._host}"
            self._base = ""

    async def _request(
        self, session: aiohttp.ClientSession, method: str, path: str, query: dict[str, str]
    ) -> tuple[int, bytes]:
        headers = sign(method, self._host, path, query, self._credentials, self._region, datetime.now(UTC))
        # `uploads` is sent bare (`?uploads`), as the AWS SDKs do; it is signed as `uploads=`.
        pairs = canonical_query(query).split("&")
        query_text = "&".join("uploads" if pair == "uploads=" else pair for pair in pairs)
        url = URL(f"{self._origin}{path}?{query_text}", encoded=True)
        try:
            async with session.request(method, url, headers=headers) as response:
                return response.status, await response.read()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise S3RequestError(f"{method} {self._origin}{path} failed: {exc}") from exc

    async def find(self, prefix: str) -> list[MultipartUpload]:
        """Every incomplete multipart upload whose key starts with `prefix`, page by page."""
        found: list[MultipartUpload] = []
        markers: dict[str, str] | None = {}
        async with aiohttp.ClientSession(timeout=_TIMEOUT) as session:
            while markers is not None:
                query = {"uploads": "", "prefix": prefix, **self._page, **markers}
                status, body = await self._request(session, "GET", self._base or "/", query)
                if status != 200:
                    raise S3RequestError(f"ListMultipartUploads answered {status}: {body[:300]!r}")
                uploads, markers = parse_listing(body)
                found.extend(uploads)
        return found

    async def abort(self, uploads: list[MultipartUpload]) -> int:
        """Abort these uploads; one already gone (aborted by another sweeper, completed) is fine.
        Returns how many were aborted here."""
        aborted = 0
        async with aiohttp.ClientSession(timeout=_TIMEOUT) as session:
            for upload in uploads:
                path = f"{self._base}/{_uri_encode(upload.key, keep_slash=True)}"
                status, body = await self._request(session, "DELETE", path, {"uploadId": upload.upload_id})
                if status in (200, 204):
                    aborted += 1
                elif status != 404:
                    raise S3RequestError(f"AbortMultipartUpload answered {status}: {body[:300]!r}")
        return aborted
