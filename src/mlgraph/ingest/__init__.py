"""Event intake, the durable inbox, and the workers that hydrate from sources."""
