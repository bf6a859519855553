"""MQTT ingestion: topic contract, payload models, pipeline, time-series sinks and spool."""
