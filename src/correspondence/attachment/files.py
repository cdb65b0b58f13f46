"""File names and types: the reference's naming rules (api.md §3.2), MIME types by extension
(§6.9 dataType, §3.9 download Content-Type) and the download's Content-Disposition."""

from __future__ import annotations

import posixpath
import re
from urllib.parse import quote

from correspondence.attachment import errors
from correspondence.kit.errors import ApiError

ALLOWED_EXTENSIONS = frozenset(
    {
        ".doc", ".xls", ".docx", ".xlsx", ".ppt", ".pps", ".zip", ".pdf", ".html", ".txt",
        ".xml", ".jpg", ".jpeg", ".gif", ".bmp", ".png", ".json", ".csv", ".dcm", ".dicom",
    }
)  # fmt: skip
_INVALID_CHARS = re.compile(r'[<>:"/\\|?*\x00-\x1f]')
_RESERVED = re.compile(r"^(?:CON|PRN|AUX|NUL|COM[1-9]|LPT[1-9])(?:\..*)?\Z", re.IGNORECASE | re.S)

_DATA_TYPES = {
    ".doc": "application/msword",
    ".xls": "application/vnd.ms-excel",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".ppt": "application/vnd.ms-powerpoint",
    ".pps": "application/vnd.ms-powerpoint",
    ".zip": "application/zip",
    ".pdf": "application/pdf",
    ".html": "text/html",
    ".txt": "text/plain",
    ".xml": "text/xml",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".bmp": "image/bmp",
    ".png": "image/png",
    ".json": "application/json",
    ".csv": "text/csv",
    ".dcm": "application/dicom",
    ".dicom": "application/dicom",
}
_DOWNLOAD_TYPES = {
    ".pdf": "application/pdf",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".bmp": "image/bmp",
    ".txt": "text/plain; charset=utf-8",
    ".csv": "text/csv; charset=utf-8",
    ".json": "application/json",
    ".xml": "application/xml",
    ".html": "text/html; charset=utf-8",
    ".dcm": "application/dicom",
    ".dicom": "application/dicom",
}
_INLINE = frozenset({".pdf", ".png", ".jpg", ".jpeg", ".gif", ".bmp"})


def extension(file_name: str) -> str:
    """Lower-cased extension with its dot, like .NET's Path.GetExtension ("" when none)."""
    ext = posixpath.splitext(file_name)[1]
    return ext.lower() if ext != "." else ""


def check_file_name(file_name: str | None) -> ApiError | None:
    """The first naming rule `file_name` breaks, in the reference's order; None when it is fine."""
    if file_name is None or not file_name.strip():
        return errors.FILENAME_MISSING()
    if len(file_name) > 255:
        return errors.FILENAME_TOO_LONG()
    if extension(file_name) not in ALLOWED_EXTENSIONS:
        return errors.FILETYPE_NOT_ALLOWED()
    if _INVALID_CHARS.search(file_name):
        return errors.FILENAME_INVALID()
    if _RESERVED.match(file_name):
        return errors.RESERVED_NAME()
    return None


def data_type(file_name: str) -> str:
    """The attachment's `dataType` (api.md §6.9); unknown extensions give the reference's
    non-standard `binary_octet_stream`."""
    return _DATA_TYPES.get(extension(file_name), "binary_octet_stream")


def download_type(file_name: str) -> str:
    return _DOWNLOAD_TYPES.get(extension(file_name), "application/octet-stream")


def content_disposition(file_name: str) -> str:
    """`inline` for what browsers show (pdf, images), `attachment` otherwise; the name in both the
    ASCII `filename` and the UTF-8 `filename*` parameters (RFC 6266)."""
    encoded = quote(file_name, safe="!#$&+-.^_`|~")
    if extension(file_name) in _INLINE:
        return f"inline; filename*=UTF-8''{encoded}"
    fallback = "".join(c if 32 <= ord(c) < 127 else "_" for c in file_name)
    fallback = fallback.replace("\\", "\\\\").replace('"', '\\"')
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


# --- download all (api.md §3.10) ------------------------------------------------------------------

_ENTRY_NAME_BYTES = 255
_ZIP_NAME_CHARS = 100
_ZIP_FALLBACK = "correspondence-attachments"
_NOT_ZIP_NAME = re.compile(r"[^a-z0-9-]")
_DASHES = re.compile(r"-{2,}")


def _fit(stem: str, suffix: str) -> str:
    """`stem + suffix` cut at a character boundary to at most 255 bytes of UTF-8, the suffix kept."""
    room = _ENTRY_NAME_BYTES - len(suffix.encode())
    return stem.encode()[: max(room, 0)].decode(errors="ignore") + suffix


def zip_entry_names(file_names: list[str]) -> list[str]:
    """Entry names in the zip, in order: each file name truncated to 255 bytes of UTF-8 keeping its
    extension; a name already taken (ignoring case) becomes `name(1).ext`, `name(2).ext`, …"""
    taken: set[str] = set()
    names: list[str] = []
    for file_name in file_names:
        # Names were checked at Initialize (no separators); an entry never leaves its folder anyway.
        safe = file_name.replace("/", "_").replace("\\", "_") or "attachment"
        stem, ext = posixpath.splitext(safe)
        name = _fit(stem, ext)
        counter = 0
        while name.casefold() in taken:
            counter += 1
            name = _fit(stem, f"({counter}){ext}")
        taken.add(name.casefold())
        names.append(name)
    return names


def zip_file_name(title: str | None) -> str:
    """The zip's file name from the message title: lower case, spaces as dashes, only [a-z0-9-],
    no repeated or outer dashes, at most 100 characters; a fallback when nothing is left, and a
    prefix for a Windows reserved name."""
    name = _NOT_ZIP_NAME.sub("", (title or "").lower().replace(" ", "-"))
    name = _DASHES.sub("-", name).strip("-")[:_ZIP_NAME_CHARS].strip("-")
    if not name:
        name = _ZIP_FALLBACK
    elif _RESERVED.match(name):
        name = f"{_ZIP_FALLBACK}-{name}"
    return name + ".zip"


def zip_content_disposition(file_name: str) -> str:
    """The zip's name is plain ASCII, given in both parameters as ASP.NET's File() writes them."""
    return f"attachment; filename={file_name}; filename*=UTF-8''{file_name}"
