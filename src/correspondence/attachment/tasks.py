"""Job names of the attachment slice (named like log events), apart from their handlers so use
cases can enqueue them."""

from correspondence.kit.ids import new_id

SCAN = "attachment.scan"  # no longer enqueued (migration 0014): the scan poller drains the files
EXPIRE = "attachment.expire"
DELETE_BLOB = "attachment.delete_blob"

BLOB_PREFIX = "attachments/"  # every key of the slice starts with it


def new_blob_key(attachment_id: object) -> str:
    """Where one upload of an attachment writes its bytes: a fresh key per upload, so deleting an
    earlier upload's bytes (a delayed job) never touches a later one's. Rows record the key they
    use; rows from before per-upload keys recorded `attachments/{id}`, which keeps working."""
    return f"{BLOB_PREFIX}{attachment_id}.{new_id()}"
