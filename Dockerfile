# One image for every stage worker, `guardstream serve` and the topic initialiser; the
# command picks the role (`worker --stage redact`, `serve --host 0.0.0.0`, ...).
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml setup.py README.md ./
COPY guardstream ./guardstream
COPY agents ./agents
COPY topics ./topics
COPY models ./models
RUN pip install --no-cache-dir . && useradd --create-home --uid 10001 guardstream
# Worker health check (stdlib only): a live connection to a broker port. See the file.
COPY deploy/healthcheck.py /usr/local/lib/guardstream/healthcheck.py
USER 10001
# Writable working directory; Faust keeps its (small) data directory under $TMPDIR.
WORKDIR /home/guardstream
EXPOSE 8080
ENTRYPOINT ["guardstream"]
