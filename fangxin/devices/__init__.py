"""Sites' devices: registry, credentials, heartbeats, connectivity and alarms."""
