# One image for every Firebreak service: `firebreak serve <service>` or `firebreak migrate`.
#   docker build -t firebreak .
#   docker run --rm firebreak serve gateway

# Build stage: generate the gRPC code from the protos and build the wheel.
FROM python:3.11-slim AS build
WORKDIR /src
RUN python -m venv /opt/build && /opt/build/bin/pip install --no-cache-dir "grpcio-tools>=1.66" build
COPY pyproject.toml README.md ./
COPY proto ./proto
COPY firebreak ./firebreak
COPY services ./services
RUN /opt/build/bin/python -m grpc_tools.protoc -Iproto --python_out=. --pyi_out=. \
        --grpc_python_out=. $(find proto -name '*.proto') \
    && /opt/build/bin/python -m build --wheel --outdir /dist .

# Install stage: the runtime dependencies and the wheel, in a virtual environment to copy over.
FROM python:3.11-slim AS install
COPY --from=build /dist /dist
RUN python -m venv /opt/firebreak \
    && /opt/firebreak/bin/pip install --no-cache-dir /dist/*.whl \
    && /opt/firebreak/bin/python -m compileall -q /opt/firebreak

# Final stage: no compilers, no build tools, no source tree; runs as an unprivileged user.
FROM python:3.11-slim
RUN groupadd --system --gid 10001 firebreak \
    && useradd --system --uid 10001 --gid firebreak --no-create-home --shell /usr/sbin/nologin firebreak
COPY --from=install /opt/firebreak /opt/firebreak
ENV PATH=/opt/firebreak/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    FIREBREAK_VAR_DIR=/tmp/firebreak
WORKDIR /tmp
USER 10001:10001
EXPOSE 8080 50051
ENTRYPOINT ["firebreak"]
CMD ["serve", "gateway"]
