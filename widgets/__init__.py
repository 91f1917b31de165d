"""Widgets that know nothing of screens, the feed or the store."""

LOADING = "loading…"  # shown in place of what has not been read yet, never a value or "none"
