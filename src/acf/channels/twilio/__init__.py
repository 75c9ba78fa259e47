"""Twilio Programmable Messaging: SMS, and WhatsApp through Twilio; form webhooks in,
the Messages REST API out."""
