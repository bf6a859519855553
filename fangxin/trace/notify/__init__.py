"""Outgoing notifications: the webhook outbox and its sender."""
