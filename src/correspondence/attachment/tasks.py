"""Job names of the attachment slice (named like log events), apart from their handlers so use
cases can enqueue them."""

SCAN = "attachment.scan"
EXPIRE = "attachment.expire"
DELETE_BLOB = "attachment.delete_blob"


def blob_key(attachment_id: object) -> str:
    """Where an attachment's bytes live in the blob store."""
    return f"attachments/{attachment_id}"
