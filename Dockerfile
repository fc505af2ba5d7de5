# strangler: the routing proxy (and the whole CLI) as a container image.
#
#   docker build -t strangler:0.1.0 .
#   docker run --rm -p 8000:8000 -v $PWD/routes:/etc/strangler:ro strangler:0.1.0
#
# Two stages: wheels are built with the compilers of the full image; the runtime image is
# slim Python with those wheels installed, no build tools, running as a non-root user.

FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY common common
COPY analyzer analyzer
COPY proxy proxy
COPY cli cli
# cli/strangler_cli/loadtest_assets/locustfile.py links to it
COPY loadtests/locustfile.py loadtests/locustfile.py
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[postgres]"

FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels "strangler[postgres]" \
    && rm -rf /wheels \
    && useradd --system --uid 10001 --gid 0 --home-dir /var/lib/strangler --create-home strangler
USER 10001
WORKDIR /var/lib/strangler
# the data port: traffic, and the probes /_strangler/healthz and /_strangler/readyz
EXPOSE 8000
ENTRYPOINT ["strangler"]
# the admin API stays on the pod's loopback (kubectl port-forward reaches it); the state
# (releases, shadow evidence) in the working directory unless --state says otherwise
CMD ["proxy", "--routes", "/etc/strangler/routes.yaml", "--listen", "0.0.0.0:8000", "--admin", "127.0.0.1:9901", \
     "--state", "/var/lib/strangler/state.sqlite3"]
