# One image for web, worker and beat; docker-compose.yml picks the command.
FROM python:3.13-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    STATIC_ROOT=/app/staticfiles

WORKDIR /app
RUN useradd --system --create-home --uid 1000 sirekap

COPY requirements.txt .
RUN pip install --no-cache-dir --require-hashes -r requirements.txt

COPY . .
# collectstatic needs settings but no services: placeholders only for this build step.
RUN DATABASE_URL=postgresql://build@localhost/build REDIS_URL=redis://localhost:6379/0 \
    SECRET_KEY=collectstatic-only-placeholder-not-used-at-runtime \
    python -c "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'sirekap_tracker.settings'); django.setup(); from django.core.management import call_command; call_command('collectstatic', '--no-input', verbosity=0)"

# Documents (MEDIA_ROOT) and the public snapshot (SNAPSHOT_ROOT): a new named volume takes this folder's owner, so the app can write.
RUN mkdir -p /app/media /app/snapshots && chown sirekap /app/media /app/snapshots

USER sirekap
EXPOSE 8000
CMD ["gunicorn", "sirekap_tracker.wsgi:application", "--config", "gunicorn.conf.py"]
