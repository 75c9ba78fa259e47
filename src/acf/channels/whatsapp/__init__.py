"""WhatsApp Cloud API (Meta): webhooks in, Graph API messages out."""
