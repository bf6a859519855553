"""HTTP door: Flask app factory, blueprints, auth, problem+json errors, OpenAPI."""
