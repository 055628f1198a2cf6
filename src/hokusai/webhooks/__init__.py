"""Durable, signed webhooks: outbox, delivery with retries, delivery log, redelivery."""

from hokusai.webhooks.hub import Webhooks

__all__ = ["Webhooks"]
