"""CDC sources: the PostgreSQL server the project starts (or the user's own) and its orders schema."""
