"""The v1 wire contract: MQTT topics, payload models and ids, shared by every door."""
