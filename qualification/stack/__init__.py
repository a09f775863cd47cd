"""The stack under test: Redis, the API and Celery workers, each a managed process."""
