"""Adapters for the asyncio Telegram libraries: :mod:`dcpool.integrations.telethon` and
:mod:`dcpool.integrations.pyrogram` (imported on demand: neither library is a dependency)."""
