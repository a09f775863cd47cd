# The bridge image: the API and the Celery worker run from it (see docker-compose.celery.yml).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir . && useradd --create-home bridge && mkdir -p /data && chown bridge /data
USER bridge
ENV JOB_REGISTRY_PATH=/data/registry.db
EXPOSE 8000
CMD ["uvicorn", "mcp_bridge.app:create_app", "--factory", "--host", "0.0.0.0", "--port", "8000"]
