"""Entry point for the Celery command line: `celery -A workers.main worker`."""

from __future__ import annotations

from workers.celery_app import create_celery

app = create_celery()
