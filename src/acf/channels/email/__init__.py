"""Email: Mailgun routes and SendGrid Inbound Parse in, SMTP out, threaded by Message-ID."""
