FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml setup.py README.md ./
COPY guardstream ./guardstream
COPY agents ./agents
COPY topics ./topics
COPY models ./models
RUN pip install --no-cache-dir . && useradd --create-home guardstream
USER guardstream
ENTRYPOINT ["guardstream"]
