"""Numbered errors of the batch extension. The reference has no batches: the numbers are ours,
91xx, beside the reference's 1xxx–4xxx, in the same ProblemDetails shape."""

from correspondence.kit.errors import ErrorSpec

NOT_FOUND = ErrorSpec(9101, 404, "The requested batch was not found")
NOT_OPEN = ErrorSpec(9102, 409, "The batch is {status}: pages, commit and cancel need an Open batch")
PAGE_CHANGED = ErrorSpec(
    9103, 409, "Page {page} of this batch was added with other recipients; a page cannot be changed"
)
EMPTY = ErrorSpec(9104, 400, "The batch has no recipients: add a page before committing")
RECIPIENT_IN_OTHER_PAGE = ErrorSpec(
    9105, 400, "Recipient {recipient} is already in another page of this batch"
)
IDEMPOTENT_KEY_USED = ErrorSpec(9106, 409, "A batch with the same idempotent key already exists")
