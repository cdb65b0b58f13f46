"""Numbered errors of the attachment slice, with the upstream codes and messages (api.md §8.2)."""

from correspondence.correspondence.errors import NO_ACCESS, RESOURCE_UNKNOWN
from correspondence.kit.errors import ErrorSpec

__all__ = ["NO_ACCESS", "RESOURCE_UNKNOWN"]

NOT_FOUND = ErrorSpec(2001, 404, "The requested attachment was not found")
UPLOAD_FAILED = ErrorSpec(2002, 502, "Error occurred during upload")
ALREADY_LINKED = ErrorSpec(2003, 400, "Cannot upload attachment to a correspondence that has been created")
FILE_SIZE = ErrorSpec(2004, 400, "File must have content and has a max file size of {limit}")
ALREADY_UPLOADED = ErrorSpec(2005, 400, "File has already been or is being uploaded")
ALREADY_PURGED = ErrorSpec(2006, 400, "File has already been purged")
PURGE_LINKED = ErrorSpec(
    2007, 400, "Attachment cannot be purged as it is linked to at least one existing correspondence"
)
CHECKSUM_MISMATCH = ErrorSpec(2008, 400, "Checksum mismatch")
NO_LOCATION = ErrorSpec(2009, 400, "Could not get data location url")
FILENAME_MISSING = ErrorSpec(2010, 400, "Filename is missing")
FILENAME_TOO_LONG = ErrorSpec(2011, 400, "Filename is too long")
FILENAME_INVALID = ErrorSpec(
    2012,
    400,
    "Filename contains invalid characters. The ruleset is based on Windows file naming convention which is defined here: https://learn.microsoft.com/en-us/windows/win32/fileio/naming-a-file#file-and-directory-names",
)
FILETYPE_NOT_ALLOWED = ErrorSpec(2013, 400, "Filetype not allowed")
PUBLISHED_NO_SENDER_ACCESS = ErrorSpec(
    2016,
    400,
    "This attachment is associated with a published correspondence and can no longer be accessed by service owner",
)
EXPIRATION_TOO_SOON = ErrorSpec(2017, 400, "Attachment expirationTime must be at least {days} days from now")
EXPIRED_PURGE = ErrorSpec(2018, 400, "File has expired")
PURGED_DOWNLOAD = ErrorSpec(2019, 400, "The attachment has been purged and cannot be downloaded")
EXPIRED_DOWNLOAD = ErrorSpec(2020, 400, "The attachment has expired and cannot be downloaded")
RESERVED_NAME = ErrorSpec(
    2021,
    400,
    "The filename uses a Windows reserved name. Files cannot be named CON, PRN, AUX, NUL, COM1-COM9, or LPT1-LPT9 (e.g., 'CON.txt' is not allowed, but 'CONSOLE.txt' is).",
)
TOO_SLOW = ErrorSpec(2022, 408, "Upload request timed out due to data arriving too slowly")
# The reference's message says 25 MB; its limit (and ours, by default) is 2,000,000,000 bytes.
ZIP_TOO_LARGE = ErrorSpec(
    2023, 400, "Total size of attachments exceeds the maximum allowed for zip download (25 MB)"
)
RESOURCE_TYPE = ErrorSpec(
    4009, 400, "Resource type is not supported. Resource must be of type CorrespondenceService."
)


def size_text(limit: int) -> str:
    """2,000,000,000 → "2GB", 50,000,000,000 → "50GB" (the reference's wording)."""
    for unit, factor in (("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if limit >= factor:
            return f"{limit / factor:g}{unit}"
    return f"{limit} bytes"
