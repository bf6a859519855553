"""HTML pages: the regulators' dashboard, the consumer scan page and their figures."""
