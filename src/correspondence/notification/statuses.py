"""Status names as Altinn Notifications writes them (api.md §7.9), so clients that read the real
service's details read ours: per address (`sendStatus.status`) and per order (`processingStatus`)."""

from __future__ import annotations

EMAIL, SMS = "Email", "SMS"

EMAIL_NEW = "Email_New"
EMAIL_SENDING = "Email_Sending"
EMAIL_SUCCEEDED = "Email_Succeeded"
EMAIL_FAILED = "Email_Failed"
EMAIL_TRANSIENT = "Email_Failed_TransientError"
EMAIL_RESERVED = "Email_Failed_RecipientReserved"
EMAIL_NOT_IDENTIFIED = "Email_Failed_RecipientNotIdentified"
SMS_NEW = "SMS_New"
SMS_SENDING = "SMS_Sending"
SMS_ACCEPTED = "SMS_Accepted"
SMS_FAILED = "SMS_Failed"
SMS_RESERVED = "SMS_Failed_RecipientReserved"
SMS_NOT_IDENTIFIED = "SMS_Failed_RecipientNotIdentified"

# Per channel: waiting, being sent, accepted, failed, reserved, nobody found.
NEW = {EMAIL: EMAIL_NEW, SMS: SMS_NEW}
SENDING = {EMAIL: EMAIL_SENDING, SMS: SMS_SENDING}
ACCEPTED = {EMAIL: EMAIL_SUCCEEDED, SMS: SMS_ACCEPTED}
FAILED = {EMAIL: EMAIL_FAILED, SMS: SMS_FAILED}
RESERVED = {EMAIL: EMAIL_RESERVED, SMS: SMS_RESERVED}
NOT_IDENTIFIED = {EMAIL: EMAIL_NOT_IDENTIFIED, SMS: SMS_NOT_IDENTIFIED}
# Waiting for a retry. SMS has no name of its own for it in the reference: it stays SMS_New.
RETRYING = {EMAIL: EMAIL_TRANSIENT, SMS: SMS_NEW}

CLAIMABLE = (EMAIL_NEW, EMAIL_TRANSIENT, SMS_NEW)
IN_FLIGHT = (EMAIL_SENDING, SMS_SENDING)
SUCCEEDED = frozenset({EMAIL_SUCCEEDED, "Email_Delivered", SMS_ACCEPTED, "SMS_Delivered"})

DESCRIPTIONS = {
    EMAIL_NEW: "The email has been created, but has not been picked up for processing yet.",
    EMAIL_SENDING: "The email is being processed and will be attempted sent shortly.",
    EMAIL_SUCCEEDED: "The email has been accepted by the mail server and will be delivered shortly.",
    EMAIL_FAILED: "The email was not sent due to an unspecified failure.",
    EMAIL_TRANSIENT: "The email was not sent due to a transient error. We will retry sending the email.",
    EMAIL_RESERVED: "The email was not sent because the recipient has reserved themselves from electronic "
    "communication.",
    EMAIL_NOT_IDENTIFIED: "The email was not sent because the recipient's email address was not found.",
    SMS_NEW: "The SMS has been created, but has not been picked up for processing yet.",
    SMS_SENDING: "The SMS is being processed and will be attempted sent shortly.",
    SMS_ACCEPTED: "The SMS has been accepted by the gateway service and will be sent shortly.",
    SMS_FAILED: "The SMS was not sent due to an unspecified failure.",
    SMS_RESERVED: "The SMS was not sent because the recipient has reserved themselves from electronic "
    "communication.",
    SMS_NOT_IDENTIFIED: "The SMS was not sent because the recipient's mobile number was not found.",
}

# Order processing (`processingStatus.status`).
REGISTERED = "Registered"
PROCESSING = "Processing"
COMPLETED = "Order_Completed"
CONDITION_NOT_MET = "Order_SendConditionNotMet"
# Stopped by the sender's recall before it was sent (Altinn Notifications' cancelled order).
CANCELLED = "Order_Cancelled"

ORDER_DESCRIPTIONS = {
    REGISTERED: "Order has been registered and is awaiting processing.",
    PROCESSING: "Order processing is ongoing. Notifications are being generated.",
    COMPLETED: "Order processing is completed. All notifications have been generated.",
    CONDITION_NOT_MET: "Order processing was stopped due to send condition not being met.",
    CANCELLED: "Order processing was stopped due to order being cancelled.",
}
# An address still waiting when its order was cancelled: failed, and its description says why.
CANCELLED_DELIVERY = "Cancelled by the sender (recall) before it was sent."
