"""Durable, signed webhooks: outbox, delivery with retries, delivery log, redelivery."""

from hokusai.webhooks.service import Webhooks

__all__ = ["Webhooks"]
