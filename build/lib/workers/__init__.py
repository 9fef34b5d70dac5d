"""Celery workers: the app factory, thin tasks, the step engine and the agent backends."""
