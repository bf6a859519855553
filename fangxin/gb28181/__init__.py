"""The GB/T 28181 door: SIP registration, keepalive, catalog and alarms of cameras and NVRs."""
