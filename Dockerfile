# One image for every Firebreak service: `firebreak serve <service>` or `firebreak migrate`.
#   docker build -t firebreak .
#   docker run --rm firebreak serve gateway
#
# What goes in is pinned: the base image by digest (python:3.11-slim when it was pinned; to move
# on, take the new digest from `docker buildx imagetools inspect python:3.11-slim`), every
# Python package by version and hash (requirements/, `make lock` after changing pyproject.toml).

# Build stage: generate the gRPC code from the protos and build the wheel.
FROM python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7 AS build
WORKDIR /src
COPY requirements ./requirements
RUN python -m venv /opt/build \
    && /opt/build/bin/pip install --no-cache-dir --require-hashes -r requirements/image-build.txt
COPY pyproject.toml README.md ./
COPY proto ./proto
COPY firebreak ./firebreak
COPY services ./services
RUN /opt/build/bin/python -m grpc_tools.protoc -Iproto --python_out=. --pyi_out=. \
        --grpc_python_out=. $(find proto -name '*.proto') \
    && /opt/build/bin/python -m build --wheel --no-isolation --outdir /dist .

# Install stage: the runtime dependencies and the wheel, in a virtual environment to copy over.
# The locked dependencies first, each checked against its hash; then the wheel alone, and
# `pip check` fails the build if the lock misses something the wheel needs.
FROM python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7 AS install
COPY --from=build /src/requirements/image.txt /requirements.txt
COPY --from=build /dist /dist
RUN python -m venv /opt/firebreak \
    && /opt/firebreak/bin/pip install --no-cache-dir --require-hashes -r /requirements.txt \
    && /opt/firebreak/bin/pip install --no-cache-dir --no-deps /dist/*.whl \
    && /opt/firebreak/bin/pip check \
    && /opt/firebreak/bin/python -m compileall -q /opt/firebreak

# Final stage: no compilers, no build tools, no source tree; runs as an unprivileged user.
FROM python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7
RUN groupadd --system --gid 10001 firebreak \
    && useradd --system --uid 10001 --gid firebreak --no-create-home --shell /usr/sbin/nologin firebreak
COPY --from=install /opt/firebreak /opt/firebreak
ENV PATH=/opt/firebreak/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    FIREBREAK_VAR_DIR=/tmp/firebreak
WORKDIR /tmp
USER 10001:10001
# The gateway's HTTP, a service's gRPC, intake's SMTP for reports by email (when turned on).
EXPOSE 8080 50051 2525
ENTRYPOINT ["firebreak"]
CMD ["serve", "gateway"]
