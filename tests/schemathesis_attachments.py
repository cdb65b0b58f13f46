"""Steering for the attachment operations in tests/test_schemathesis.py (the same approach: hooks
that send part of the fuzzing cases onto the deep paths, the rest as generated).

* ids: the attachment operations draw about half their `attachmentId`s from pools seeded before the
  run — attachments never uploaded (for the upload, which succeeds once each), published ones (for
  overview, details and the sender's download), others for the purge, and (correspondence,
  attachment) pairs published to the recipients for the recipient's download; download all draws
  about half its `correspondenceId`s from correspondences published to the recipients with two
  attachments, or with the shared one;
* bodies: the official document gives the upload no request body, so every upload case gets a small
  octet-stream body; attachment and multipart Initialize bodies are aimed like the JSON Initialize's
  (our resource, valid recipients, then a content that passes; files are left out, as schemathesis
  names each file part after its field, without an extension the file-name rules accept);
* callers: the sender for the attachment operations; the recipients (and others) for the
  recipient's download and download all.

`expirationTime` of the attachments listed in a correspondence is a non-nullable date-time in the
official document, but the reference writes `null` for an attachment that does not expire (api.md
§6.11), and so do we: `nullable_expiration` allows exactly that member to be null in the document the
test loads, as `_response_notification_may_be_null` does for `notification`.
"""

from __future__ import annotations

import copy
import time
from typing import Any

import httpx
import schemathesis
from hypothesis import strategies as st

from tests import builders

API = "/correspondence/api/v1"
Operation = tuple[str, str]
INITIALIZE_ATTACHMENT: Operation = ("post", f"{API}/attachment")
UPLOAD: Operation = ("post", f"{API}/attachment/{{attachmentId}}/upload")
OVERVIEW: Operation = ("get", f"{API}/attachment/{{attachmentId}}")
DETAILS: Operation = ("get", f"{API}/attachment/{{attachmentId}}/details")
PURGE: Operation = ("delete", f"{API}/attachment/{{attachmentId}}")
SENDER_DOWNLOAD: Operation = ("get", f"{API}/attachment/{{attachmentId}}/download")
RECIPIENT_DOWNLOAD: Operation = (
    "get",
    f"{API}/correspondence/{{correspondenceId}}/attachment/{{attachmentId}}/download",
)
MULTIPART: Operation = ("post", f"{API}/correspondence/upload")
DOWNLOAD_ALL: Operation = ("get", f"{API}/correspondence/{{correspondenceId}}/attachments/downloadall")

# Who calls, as in test_schemathesis.CALLERS (the first is the default).
CALLERS: dict[Operation, list[str]] = {
    INITIALIZE_ATTACHMENT: ["sender"],
    UPLOAD: ["sender"],
    OVERVIEW: ["sender"],
    DETAILS: ["sender"],
    PURGE: ["sender"],
    SENDER_DOWNLOAD: ["sender"],
    MULTIPART: ["sender"],
    RECIPIENT_DOWNLOAD: ["person", "person", "org", "stranger", "sender"],
    DOWNLOAD_ALL: ["person", "person", "org", "stranger", "sender"],
}

UPLOAD_BODY = b"%PDF-1.7\nfuzzed upload\n"
POOLS: dict[Operation, list[str]] = {}  # attachment ids (download all: correspondence ids), by `seed`
PAIRS: list[tuple[str, str]] = []  # (correspondence, attachment) for the recipient's download
GOOD_FORM = {
    "Correspondence.SendersReference": "fuzz",
    "Correspondence.Content.Language": "nb",
    "Correspondence.Content.MessageTitle": "Meldingstittel",
    "Correspondence.Content.MessageSummary": "Ett sammendrag",
    "Correspondence.Content.MessageBody": "# Meldingen\n\nMed *markdown*.",
}
# Form fields the deeper aim leaves out: files (see above), structured values a form cannot carry
# as one string, and the notification and dates whose rules the JSON aim satisfies another way.
_DROPPED_PREFIXES = (
    "attachments",
    "existingattachments",
    "correspondence.content.attachments",
    "correspondence.externalreferences",
    "correspondence.replyoptions",
    "correspondence.propertylist",
    "correspondence.notification",
    "correspondence.duedatetime",
    "correspondence.requestedpublishtime",
    "correspondence.isconfirmationneeded",
    "correspondence.messagesender",
)


def nullable_expiration(document: dict[str, Any]) -> dict[str, Any]:
    """The document with `CorrespondenceAttachmentExt.expirationTime` allowed to be null (see above)."""
    document = copy.deepcopy(document)
    member = document["components"]["schemas"]["CorrespondenceAttachmentExt"]["properties"]["expirationTime"]
    assert member == {"type": "string", "format": "date-time"}, member
    member["nullable"] = True
    return document


def _operation(context: schemathesis.HookContext) -> Operation:
    assert context.operation is not None
    return context.operation.method.lower(), context.operation.path


def _aim_attachment(body: Any, level: int, resource_id: str) -> Any:
    """0: as generated. 1: our resource. 2: also a file name and reference that pass the rules."""
    if level == 0 or not isinstance(body, dict):
        return body
    body = {k: v for k, v in body.items() if k != "recipients"}  # added by the JSON Initialize's aim
    body["resourceId"] = resource_id
    if level >= 2:
        body["fileName"] = "fuzz.pdf"
        if not isinstance(body.get("sendersReference"), str) or not body["sendersReference"]:
            body["sendersReference"] = "fuzz"
        body.pop("checksum", None)
    return body


def _aim_form(body: Any, level: int, resource_id: str, recipients: list[str]) -> Any:
    """0: as generated. 1: our resource and valid recipients. 2: also texts that pass, without the
    fields listed in _DROPPED_PREFIXES."""
    if level == 0 or not isinstance(body, dict):
        return body
    form = {k: v for k, v in body.items() if k != "recipients"}  # added by the JSON Initialize's aim
    form["Correspondence.ResourceId"] = resource_id
    form["Recipients"] = recipients
    if level >= 2:
        form = {k: v for k, v in form.items() if not str(k).lower().startswith(_DROPPED_PREFIXES)}
        form.update(GOOD_FORM)
    return form


def register(schema: Any, *, resource_id: str, recipients: list[str]) -> None:
    """Add the hooks to the schema the fuzzing test uses (they chain after its own)."""

    @schema.hook
    def flatmap_body(context: schemathesis.HookContext, body: Any) -> Any:
        operation = _operation(context)
        if operation == INITIALIZE_ATTACHMENT:
            return st.builds(
                _aim_attachment, st.just(body), st.sampled_from([2, 2, 1, 0]), st.just(resource_id)
            )
        if operation == MULTIPART:
            return st.builds(
                _aim_form,
                st.just(body),
                st.sampled_from([2, 2, 1, 0]),
                st.just(resource_id),
                st.lists(st.sampled_from(recipients), min_size=1, max_size=3, unique=True),
            )
        return st.just(body)

    @schema.hook
    def flatmap_path_parameters(context: schemathesis.HookContext, path_parameters: Any) -> Any:
        operation = _operation(context)
        if operation == DOWNLOAD_ALL and POOLS.get(DOWNLOAD_ALL) and isinstance(path_parameters, dict):
            zipped = st.sampled_from(POOLS[DOWNLOAD_ALL])
            return st.one_of(
                st.just(path_parameters), zipped.map(lambda c: {**path_parameters, "correspondenceId": c})
            )
        if not isinstance(path_parameters, dict) or "attachmentId" not in path_parameters:
            return st.just(path_parameters)
        if operation == RECIPIENT_DOWNLOAD and PAIRS:
            known = st.sampled_from(PAIRS).map(
                lambda pair: {**path_parameters, "correspondenceId": pair[0], "attachmentId": pair[1]}
            )
            return st.one_of(st.just(path_parameters), known)
        pool = POOLS.get(operation)
        if not pool:
            return st.just(path_parameters)
        ids = st.sampled_from(pool).map(lambda aid: {**path_parameters, "attachmentId": aid})
        return st.one_of(st.just(path_parameters), ids)

    @schema.hook
    def map_case(context: schemathesis.HookContext, case: schemathesis.Case) -> schemathesis.Case:
        if _operation(context) == UPLOAD:
            case.body = UPLOAD_BODY
            case.media_type = "application/octet-stream"
        return case


def seed(
    base_url: str, authorization: dict[str, str], *, resource_id: str, recipients: list[str]
) -> list[str]:
    """Attachments for the pools, and correspondences using them. Returns the ids of unpublished
    correspondences with attachments (one expiring, one not), whose sender sees `content.attachments`."""
    sender = {"Authorization": authorization["sender"]}

    with httpx.Client(base_url=base_url, headers=sender, timeout=10) as client:

        def attachment(upload: bool, **extra: Any) -> str:
            body = {"resourceId": resource_id, "fileName": "seed.pdf", "sendersReference": "seed", **extra}
            response = client.post(f"{API}/attachment", json=body)
            assert response.status_code == 200, response.text
            attachment_id = str(response.json())
            if upload:
                uploaded = client.post(
                    f"{API}/attachment/{attachment_id}/upload",
                    content=UPLOAD_BODY,
                    headers={"Content-Type": "application/octet-stream"},
                )
                assert uploaded.status_code == 200 and uploaded.json()["status"] == "Published", uploaded.text
            return attachment_id

        def correspondences(attachment_ids: list[str], people: list[str], **kw: Any) -> list[str]:
            body = builders.initialize_body(resource_id, people, **kw)
            body["existingAttachments"] = attachment_ids
            response = client.post(f"{API}/correspondence", json=body)
            assert response.status_code == 200, response.text
            return [item["correspondenceId"] for item in response.json()["correspondences"]]

        fresh = [attachment(False) for _ in range(12)]
        published = [attachment(True) for _ in range(4)]
        purgeable = [attachment(True) for _ in range(3)] + fresh[:2]
        shared = attachment(True, displayName="Vedlegg")
        downloads = correspondences([shared], recipients)
        zipped = correspondences([attachment(True), attachment(True, fileName="vedlegg.pdf")], recipients)
        later = builders.future(5)
        unpublished = correspondences([attachment(True)], recipients[:1], requestedPublishTime=later)
        unpublished += correspondences(
            [attachment(True, expirationInDays=30)], recipients[:1], requestedPublishTime=later
        )
        deadline = time.monotonic() + 60
        pending = set(downloads + zipped)
        while pending and time.monotonic() < deadline:  # the server's worker publishes them
            pending = {
                c for c in pending if client.get(f"{API}/correspondence/{c}").json()["status"] != "Published"
            }
            time.sleep(0.2 if pending else 0)
        assert not pending, f"not published within 60 s: {sorted(pending)}"

    POOLS.update(
        {
            UPLOAD: fresh[2:],
            OVERVIEW: [*published, *fresh[:2], shared],
            DETAILS: [*published, shared],
            SENDER_DOWNLOAD: [*published, shared],
            PURGE: [*purgeable, shared],
            DOWNLOAD_ALL: [*zipped, *zipped, *downloads],
        }
    )
    PAIRS[:] = [(cid, shared) for cid in downloads]
    return unpublished


def clear() -> None:
    POOLS.clear()
    PAIRS.clear()
