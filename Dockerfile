# syntax=docker/dockerfile:1
#
# Two images:
#   docker build -t tf4ctr-keras .                      # train + export (the project's own)
#   docker build --target serving \
#       --build-arg EXPORT=exports/tf4ctr_criteo --build-arg MODEL_NAME=tf4ctr_criteo \
#       -t tf4ctr-serving .                             # TF Serving with an export baked in
#
# The serving target starts FROM the official TF Serving image (keep its version at or above
# the TensorFlow in requirements.txt) and only copies a `python -m export` model directory in.

ARG SERVING_VERSION=2.21.0

FROM tensorflow/serving:${SERVING_VERSION} AS serving
ARG EXPORT=exports/model
ARG MODEL_NAME=model
ENV MODEL_NAME=${MODEL_NAME}
# Serve as an unprivileged user: the model and config are root-owned and read-only to it.
RUN groupadd --system --gid 10001 serving \
    && useradd --system --uid 10001 --gid serving --no-create-home --shell /usr/sbin/nologin serving
COPY ${EXPORT} /models/${MODEL_NAME}
COPY serving/batching.config /config/batching.config
RUN chmod -R a+rX /models /config
USER 10001:10001
# The base image's entrypoint serves /models/${MODEL_NAME} on 8500 (gRPC) and 8501 (REST).
CMD ["--enable_batching", "--batching_parameters_file=/config/batching.config"]

FROM python:3.11-slim AS train
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY pyproject.toml README.md ./
COPY tf4ctr_keras ./tf4ctr_keras
COPY pipelines ./pipelines
COPY export ./export
COPY serving ./serving
COPY benchmarks ./benchmarks
COPY experiments ./experiments
# Data, runs and exports live on volumes: -v $PWD/data:/app/data -v $PWD/runs:/app/runs ...
VOLUME ["/app/data", "/app/runs", "/app/exports"]
ENTRYPOINT ["python", "-m"]
CMD ["pipelines.train", "--dataset", "criteo", "--quiet"]
