# zoomadmin's image: one image, four commands (compose.yaml, docs/deploy.md). It installs with
# scripts/install, the step `make install` and so CI run, so the image holds what was tested.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

RUN useradd --system --create-home --home-dir /home/zoomadmin zoomadmin \
    && mkdir -p /var/lib/zoomadmin && chown zoomadmin:zoomadmin /var/lib/zoomadmin

WORKDIR /opt/zoomadmin
# The dependencies first, so a change of code alone reuses their layer.
COPY pyproject.toml README.md ./
COPY scripts/install scripts/install
COPY zoomadmin zoomadmin
COPY meetings meetings
COPY templates templates
COPY static static
COPY deploy deploy
COPY manage.py ./
# Production: no dev tools (EXTRAS empty). Collects the static files into the image.
# (release collects them again, as the zoomadmin user: it owns them, and nothing else.)
RUN VENV=/opt/zoomadmin/.venv EXTRAS= scripts/install && rm -rf var \
    && chown -R zoomadmin:zoomadmin staticfiles

ENV PATH=/opt/zoomadmin/.venv/bin:$PATH \
    ZOOMADMIN_VAR_DIR=/var/lib/zoomadmin \
    PROMETHEUS_MULTIPROC_DIR=/var/lib/zoomadmin/prometheus \
    GUNICORN_BIND=0.0.0.0:8000

USER zoomadmin
EXPOSE 8000
# The web process; compose.yaml gives worker, beat and release their commands.
CMD ["gunicorn", "--config", "deploy/gunicorn.conf.py"]
