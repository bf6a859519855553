"""Which device kinds may speak on which MQTT channel (and post results over HTTP)."""

from __future__ import annotations

# Channels a kind is limited to; status and state are open to every kind.
ONLY_FROM = {
    "result": frozenset({"rapid_test"}),
    "alarm": frozenset({"camera", "nvr"}),
}


def channel_refusal(kind: str, channel: str) -> str | None:
    """Return why a device of this kind may not send on this channel, or None when it may."""
    allowed = ONLY_FROM.get(channel)
    if allowed is None or kind in allowed:
        return None
    return f"a {kind} device may not send {channel} messages (only {', '.join(sorted(allowed))})"
