"""Widgets only: they show models and connect signals; the work happens in models/ and workers/."""
