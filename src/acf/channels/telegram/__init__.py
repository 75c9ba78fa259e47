"""Telegram Bot API: webhook updates in, ``sendMessage`` out."""
