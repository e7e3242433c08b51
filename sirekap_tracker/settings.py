"""One settings module for every environment; everything that differs comes from the environment.

See README.md ("Configuration") for the variables. A bad value raises ConfigError naming the
variable; manage.py turns that into one line on stderr.
"""

import logging
from datetime import timedelta
from pathlib import Path

from django.utils.csp import CSP
from django.utils.translation import gettext_lazy as _

from sirekap_tracker import config, logs

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / ".var"

DEBUG = config.env_bool("DEBUG", default=False)
SECRET_KEY = config.env_secret_key("SECRET_KEY", fallback_file=VAR_DIR / "secret_key", debug=DEBUG)
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
    "django_structlog",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "regions",
    "accounts",
    "uploads",
    "uploads.progress",
    "simulator",
    "dashboard",
    "public",
    "operations",
]

MIDDLEWARE = [
    # /metrics, for the scraper inside the deployment, is answered first: by the token, whatever
    # the Host it was asked by (operations/middleware.py says why).
    "operations.middleware.MetricsMiddleware",
    # A request id for every line logged while a request is answered, and one line for it.
    "operations.middleware.RequestMiddleware",
    # Every answer under /api/ readable from any origin, every error there JSON, whoever
    # answered it (sirekap_tracker/middleware.py); before the others, to see all they answer.
    "sirekap_tracker.middleware.ApiMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "sirekap_tracker.middleware.UrlLocaleMiddleware",
    # Before anything reads the body or looks the address up (CSRF, views), with the language
    # set for their small error page.
    "sirekap_tracker.middleware.NulCharacterMiddleware",
    "sirekap_tracker.middleware.RequestBodyLimitMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    # Inside the session and CSRF middleware: keeps them from setting a cookie (or Vary: Cookie)
    # on an answer every visitor gets alike, so that a CDN may keep it (accounts/middleware.py).
    "accounts.middleware.CookielessPublicMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # request.user.is_verified(): whether this session gave a TOTP code.
    "django_otp.middleware.OTPMiddleware",
    # Logs out a session idle for SESSION_IDLE_MINUTES or older than SESSION_COOKIE_AGE, then
    # sends a user who owes a second factor to give it (accounts/middleware.py).
    "accounts.middleware.SessionIdleMiddleware",
    "accounts.middleware.SecondFactorMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
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
    # Only without DATABASE_URL: production images carry no embedded servers.
    from sirekap_tracker import embedded

    return embedded.postgres_url()


def _redis_url() -> str:
    url = config.env_str("REDIS_URL", "")
    if url:
        return config.check_redis_url("REDIS_URL", url)
    # Only without REDIS_URL: production images carry no embedded servers.
    from sirekap_tracker import embedded

    return embedded.redis_url()


DATABASES = {"default": config.parse_database_url("DATABASE_URL", _database_url())}
REDIS_URL = _redis_url()


def _cache_url() -> str:
    url = config.env_str("CACHE_URL", "")
    return config.check_redis_url("CACHE_URL", url) if url else REDIS_URL


# Only what may be lost: in production a Redis of its own that evicts (docker-compose.yml), apart
# from the broker's, which must never evict a task message. Locks live in the broker's Redis.
CACHE_URL = _cache_url()
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": CACHE_URL,
        "KEY_PREFIX": "sirekap",
    }
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Health (sirekap_tracker/health.py): workers write a heartbeat into Redis every
# HEARTBEAT_SECONDS, and beat schedules one as often; one older than the stale limit (three
# missed beats by default) counts as gone, on /healthz, the system page and /metrics.
HEARTBEAT_SECONDS = config.env_int("HEARTBEAT_SECONDS", 10)
HEARTBEAT_STALE_AFTER_SECONDS = config.env_int(
    "HEARTBEAT_STALE_AFTER_SECONDS", 3 * HEARTBEAT_SECONDS
)

# --- Celery. PostgreSQL is the source of truth; Redis only carries the news that there is work
# (see docs/design.md).

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
# Rebuilding the public snapshot keeps a process busy for most of every few seconds on election
# night: on a queue of its own, so that in production a worker of its own takes it and the
# deliveries never wait behind it (docker-compose.yml; `make run` has one worker take both).
SNAPSHOT_QUEUE = "snapshot"
CELERY_TASK_ROUTES = {"public.tasks.*": {"queue": SNAPSHOT_QUEUE}}
# An unacked message returns to the queue after this long. It must exceed the longest task (the
# hard time limit below), or a slow but healthy task would run twice.
# socket_connect_timeout: a web process sending a task while Redis is down gives up in seconds.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 600, "socket_connect_timeout": 2}
CELERY_TASK_SOFT_TIME_LIMIT = 120
CELERY_TASK_TIME_LIMIT = 180
# Retry the broker connection at startup instead of crashing while Redis comes up.
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Celery's Django fix-up closes every database connection before and after each task unless
# this is set: a new PostgreSQL backend for every delivery (a process forked, authentication,
# the prepared statements prepared again). It is set so high that the fix-up never closes them;
# sirekap_tracker/celery.py does per task what Django does per request instead, which keeps a
# connection for CONN_MAX_AGE and checks it first (CONN_HEALTH_CHECKS: a PostgreSQL restart).
CELERY_DB_REUSE_MAX = 10**12
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TIMEZONE = "UTC"
# Beat keeps its schedule state beside the local data, not in the working directory.
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "health-beat": {
        "task": "sirekap_tracker.health.beat_heartbeat",
        "schedule": float(HEARTBEAT_SECONDS),
    },
    "sweep-uploads": {
        "task": "uploads.tasks.sweep_uploads",
        "schedule": float(config.env_int("SWEEP_INTERVAL_SECONDS", 10)),
    },
    "poll-public-site": {
        "task": "uploads.tasks.poll_public_site",
        "schedule": float(config.env_int("POLL_INTERVAL_SECONDS", 60)),
    },
    # Moves the pending progress changes into the per-area counts. Reads are exact without it,
    # but add up whatever is pending, so it runs often; a run that waited too long in the queue
    # is dropped (the next one folds everything).
    "fold-progress": {
        "task": "uploads.progress.tasks.fold_progress",
        "schedule": 2.0,
        "options": {"expires": 10},
    },
    # The timeline's points: one of each area whose counts changed in the last minute
    # (minute resolution is what a chart of hours needs; a quiet minute writes nothing). A run
    # that waited past the next one is dropped: that one takes the same points.
    "take-timeline-points": {
        "task": "uploads.progress.tasks.take_timeline_points",
        "schedule": 60.0,
        "options": {"expires": 50},
    },
    # Asks for a refresh of the public snapshot for each contest kind (public.tasks): its
    # entries of every area whose data changed since its last run. A run that waited past the
    # next one is dropped: that one finds the same changes.
    "refresh-public-snapshot": {
        "task": "public.tasks.refresh_public_snapshot",
        "schedule": float(config.env_int("SNAPSHOT_REFRESH_SECONDS", 3)),
        "options": {"expires": float(config.env_int("SNAPSHOT_REFRESH_SECONDS", 3))},
    },
    # Rebuilds, every 5 minutes, the entries of areas down to the kecamatan not rebuilt for that
    # long: their timeline's time axis moves even when their counts do not.
    "sweep-public-snapshot": {
        "task": "public.tasks.sweep_public_snapshot",
        "schedule": 300.0,
        "options": {"expires": 250},
    },
    # Removes the bytes of tus uploads whose document expired (uploads.services.tus). Every
    # 5 minutes is enough: expiry is counted in hours.
    "expire-tus-uploads": {
        "task": "uploads.tasks.expire_tus_uploads",
        "schedule": 300.0,
        "options": {"expires": 250},
    },
    # Thins the timeline's points as they age (every minute for 3 hours, then one per 15
    # minutes, then one per hour). Hourly is enough: a point stays finer than its age asks for
    # an hour at most. Runs must not be further apart than
    # uploads.progress.services.COMPACTION_LOOKBACK (3 h).
    "compact-timeline-points": {
        "task": "uploads.progress.tasks.compact_timeline_points",
        "schedule": 3600.0,
    },
}
# Sending a task must not hang a web request while Redis is down: fail fast, and let the sweeper
# ring the doorbell once Redis is back (the row is already committed).
CELERY_TASK_PUBLISH_RETRY = False
CELERY_BROKER_CONNECTION_TIMEOUT = 2

# --- Uploads: intake limits, delivery to the publication server, polling the public site.

# Where delivery sends documents (PUT {PUBLICATION_URL}/documents/{contest}/{tps}). Unset, every
# delivery fails as a transient error saying so, and the uploads wait for it.
PUBLICATION_URL = config.env_http_url("PUBLICATION_URL", "")
# The data root of a site serving the KPU's public JSON (pilkada/hhcw/..., wilayah/...).
SIREKAP_DATA_URL = config.env_http_url("SIREKAP_DATA_URL", "")
UPLOAD_MAX_PAGE_BYTES = config.env_int("UPLOAD_MAX_PAGE_BYTES", 10 * 1024 * 1024)
UPLOAD_MAX_PAGES = config.env_int("UPLOAD_MAX_PAGES", 20)
# An image page may declare at most this many pixels (read from its header before decoding): a
# phone photo has 12 to 50 million; a small file declaring 100,000 x 100,000 would need tens of
# gigabytes to decode.
UPLOAD_MAX_PAGE_PIXELS = config.env_int("UPLOAD_MAX_PAGE_PIXELS", 50_000_000)
# Versions of the document one upload may have: each replacement is kept and delivered, so an
# endless stream of alternating documents for one TPS would fill the storage and the server.
UPLOAD_MAX_DOCUMENTS = config.env_int("UPLOAD_MAX_DOCUMENTS", 10)
# Intake requests per window (UPLOAD_RATE_WINDOW_SECONDS) from one user (all their tokens and
# sessions) and from one client address; beyond, 429 with Retry-After. 0 switches a limit off.
# An address may stand for a whole mobile carrier's NAT on election night: its limit is high.
UPLOAD_RATE_WINDOW_SECONDS = config.env_int("UPLOAD_RATE_WINDOW_SECONDS", 60)
UPLOAD_RATE_PER_USER = config.env_int("UPLOAD_RATE_PER_USER", 120)
UPLOAD_RATE_PER_ADDRESS = config.env_int("UPLOAD_RATE_PER_ADDRESS", 1200)
# A request body anywhere but where documents arrive (the intake API, the upload form) is refused
# beyond this, before it is read (sirekap_tracker.middleware); nginx has the same limit.
REQUEST_BODY_MAX_BYTES = config.env_int("REQUEST_BODY_MAX_BYTES", 64 * 1024)
# Django's own limit on what is not a file (form fields, a raw body): the same everywhere, since
# where documents arrive they come as file parts, which it does not count.
DATA_UPLOAD_MAX_MEMORY_SIZE = REQUEST_BODY_MAX_BYTES
DATA_UPLOAD_MAX_NUMBER_FILES = UPLOAD_MAX_PAGES + 1
# Backoff with full jitter: a random wait up to base * 2^(attempt - 1), capped.
DELIVERY_BACKOFF_BASE_SECONDS = config.env_int("DELIVERY_BACKOFF_BASE_SECONDS", 5)
DELIVERY_BACKOFF_CAP_SECONDS = config.env_int("DELIVERY_BACKOFF_CAP_SECONDS", 300)
# One HTTP exchange with the publication server may take at most this long per phase.
DELIVERY_TIMEOUT_SECONDS = config.env_int("DELIVERY_TIMEOUT_SECONDS", 30)
# A worker holds an upload this long while sending it. It must exceed the longest delivery
# (connect + write + read timeouts); past it, the sweeper hands the upload to another worker.
DELIVERY_LEASE_SECONDS = config.env_int("DELIVERY_LEASE_SECONDS", 240)
# An upload still not delivered after this many attempts or minutes is flagged stuck ("network"
# or "server queue") and keeps retrying at the cap.
STUCK_AFTER_ATTEMPTS = config.env_int("STUCK_AFTER_ATTEMPTS", 8)
STUCK_AFTER_MINUTES = config.env_int("STUCK_AFTER_MINUTES", 30)
# Delivered but not yet public for this long: stuck in the server queue.
SERVER_QUEUE_STUCK_MINUTES = config.env_int("SERVER_QUEUE_STUCK_MINUTES", 60)
# The PPK work queue (/ppk/) lists, beside the stuck ones, a TPS still missing this long after
# its contest closed, one retrying for this long, and one delivered but not public for this long
# (before the sweeper flags it stuck at SERVER_QUEUE_STUCK_MINUTES).
MISSING_GRACE_MINUTES = config.env_int("MISSING_GRACE_MINUTES", 60)
FAILING_LONG_MINUTES = config.env_int("FAILING_LONG_MINUTES", 10)
SERVER_QUEUE_LONG_MINUTES = config.env_int("SERVER_QUEUE_LONG_MINUTES", 15)
# How often beat runs the sweeper, and how long a rung doorbell may go unanswered before the
# sweeper rings again (a message lost with Redis, or sitting behind a long queue).
SWEEP_INTERVAL_SECONDS = config.env_int("SWEEP_INTERVAL_SECONDS", 10)
DISPATCH_GRACE_SECONDS = config.env_int("DISPATCH_GRACE_SECONDS", 60)
POLL_INTERVAL_SECONDS = config.env_int("POLL_INTERVAL_SECONDS", 60)
# The poller fetches this many files of the public site at once (threads doing HTTP only).
POLL_CONCURRENCY = config.env_int("POLL_CONCURRENCY", 8)
# One request to the public site may take at most this long per phase (connect, read).
POLL_TIMEOUT_SECONDS = config.env_int("POLL_TIMEOUT_SECONDS", 10)
# A fetch that failed (timeout, connection, 5xx, 429) is tried again this many times.
POLL_RETRIES = config.env_int("POLL_RETRIES", 2)
# The first retry waits this long, each next one twice as long as the one before.
POLL_BACKOFF_SECONDS = config.env_int("POLL_BACKOFF_SECONDS", 1)
# After this many fetches in a row failed even so, the site is down: the run stops early.
POLL_GIVE_UP_AFTER_FAILURES = config.env_int("POLL_GIVE_UP_AFTER_FAILURES", 5)
MEDIA_ROOT = config.env_str("MEDIA_ROOT", "") or str(VAR_DIR / "media")
MEDIA_URL = "media/"
# Resumable uploads (tus, uploads/tus.py): the pages' bytes until their document is taken in, in
# a local folder whatever the document storage (S3 included), by default MEDIA_ROOT/tus. Every
# web process must see the same folder (a shared volume when they run on several hosts).
TUS_ROOT = config.env_str("TUS_ROOT", "")
# An unfinished tus document (all its pages) not continued for this long expires: its bytes are
# removed and its uploads answer 410. A finished one is answered for as long, then forgotten.
TUS_EXPIRY_HOURS = config.env_int("TUS_EXPIRY_HOURS", 24)

# --- The public snapshot (public/snapshots.py): every public page and open-data file as the bytes
# we answer, on disk, rebuilt by the workers. Web and workers must see the same folder (one volume
# in docker-compose.yml).
SNAPSHOT_ROOT = config.env_str("SNAPSHOT_ROOT", "") or str(VAR_DIR / "snapshots")
# How often the workers rebuild what changed, and how long one run may spend rebuilding: what is
# left waits for the next run, the oldest change first.
SNAPSHOT_REFRESH_SECONDS = config.env_int("SNAPSHOT_REFRESH_SECONDS", 3)
SNAPSHOT_REFRESH_BUDGET_SECONDS = config.env_int("SNAPSHOT_REFRESH_BUDGET_SECONDS", 2)
# What changed is rebuilt only where the public read it this lately (a page, a poll, a file: each
# entry apart); the rest is set aside and built again on its next request. Longer than the
# slowest poll (the timeline, every minute) and than a cache in front takes to ask again.
SNAPSHOT_READ_WINDOW_SECONDS = config.env_int("SNAPSHOT_READ_WINDOW_SECONDS", 120)
# The snapshot mirrored to S3-compatible object storage, for a CDN or any static host to serve
# the public pages and open data without our web servers (public/mirror.py): None when
# PUBLIC_S3_BUCKET is unset. PUBLIC_BASE_URL is where the public reads the site (the open data's
# image links are absolute).
PUBLIC_S3 = config.env_public_s3()
PUBLIC_MIRROR_QUEUE = "mirror"
# How often the mirror's worker puts what changed, and how long one run may spend.
PUBLIC_MIRROR_SECONDS = config.env_int("PUBLIC_MIRROR_SECONDS", 2)
PUBLIC_MIRROR_BUDGET_SECONDS = config.env_int("PUBLIC_MIRROR_BUDGET_SECONDS", 10)
if PUBLIC_S3:
    # On a queue of its own (docker-compose.yml's mirror-worker): a slow or failing bucket never
    # holds up the snapshot's refresh, whose files are written first whatever happens here.
    CELERY_TASK_ROUTES = {
        "public.tasks.push_public_mirror": {"queue": PUBLIC_MIRROR_QUEUE},
        **CELERY_TASK_ROUTES,
    }
    CELERY_BEAT_SCHEDULE["push-public-mirror"] = {
        "task": "public.tasks.push_public_mirror",
        "schedule": float(PUBLIC_MIRROR_SECONDS),
        "options": {"expires": float(PUBLIC_MIRROR_SECONDS)},
    }
# Without a finished refresh for this long (PostgreSQL or Redis down, no worker or beat), what is
# served is marked stale: a banner on pages, a header and "stale" in the open data.
SNAPSHOT_STALE_AFTER_SECONDS = config.env_int("SNAPSHOT_STALE_AFTER_SECONDS", 30)

# --- Dashboard. /dashboard/ opens this contest kind over this area; unset, the first contest kind
# held, over its region when one contest has it (a Pilkada kabupaten), else over the nation.
DASHBOARD_CONTEST = config.env_choice(
    "DASHBOARD_CONTEST", "", ["", "pkwkp", "pkwkk", "ppwp", "pdpr", "pdpd", "pdprdp", "pdprdk"]
)
DASHBOARD_AREA = config.env_area_code("DASHBOARD_AREA")

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
if PUBLIC_S3 and not STATIC_ROOT:
    raise config.ConfigError(
        "STATIC_ROOT: required when PUBLIC_S3_BUCKET is set: the pages' styles and scripts are "
        "mirrored from the collected static files (manage.py collectstatic)"
    )
# Documents go to a local folder (MEDIA_ROOT) unless an S3-compatible bucket is configured.
STORAGE_S3_BUCKET = config.env_str("STORAGE_S3_BUCKET", "")
_DOCUMENT_STORAGE = (
    {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": STORAGE_S3_BUCKET,
            "endpoint_url": config.env_str("STORAGE_S3_ENDPOINT_URL", "") or None,
            "region_name": config.env_str("STORAGE_S3_REGION", "") or None,
            "access_key": config.env_str("STORAGE_S3_ACCESS_KEY", "") or None,
            "secret_key": config.env_str("STORAGE_S3_SECRET_KEY", "") or None,
            # Documents are never overwritten: a name that exists gets a new one.
            "file_overwrite": False,
            "default_acl": "private",
        },
    }
    if STORAGE_S3_BUCKET
    else {"BACKEND": "django.core.files.storage.FileSystemStorage"}
)
STORAGES = {
    "default": _DOCUMENT_STORAGE,
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if STATIC_ROOT
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = STATIC_ROOT is None
WHITENOISE_AUTOREFRESH = DEBUG

LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "dashboard:home"
LOGOUT_REDIRECT_URL = "home"

# --- Accounts (docs/accounts.md).

# The address people reach this site at, for links made outside a request: the invitation links
# that create_operator and import_operators print.
SITE_URL = config.env_http_url("SITE_URL", "http://127.0.0.1:8000")
# An invitation (a set-password link) works once, for this many days.
INVITATION_DAYS = config.env_int("INVITATION_DAYS", 7)
PASSWORD_RESET_TIMEOUT = INVITATION_DAYS * 24 * 3600
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# django-axes first: it refuses a locked-out (username, address) before any password is checked.
# A session keeps the path of the backend that logged it in: one made before this list last
# changed ends (its user logs in again).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "accounts.backends.UserWithProfileBackend",
]
# After LOGIN_FAILURE_LIMIT failed logins of one username from one address, that pair (and only
# that: the office's other operators behind the same NAT address, and the same user elsewhere,
# may go on) is refused for LOGIN_COOLOFF_MINUTES from the last failure.
AXES_FAILURE_LIMIT = config.env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=config.env_int("LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
# The client's address behind our proxy, as the intake's rate limits see it.
AXES_CLIENT_IP_CALLABLE = "sirekap_tracker.proxies.client_address"
# The lockout page, in the page's language, says until when.
AXES_LOCKOUT_CALLABLE = "accounts.views.locked_out"
# A login that succeeds forgets the failures before it; tries during a lockout do not make it
# longer, so the time the page gives holds.
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# accounts.AccessEvent records logins, failures and lockouts; axes keeps only its counters. Its
# admin pages are off: a lockout ends by itself, or by `manage.py axes_reset_username NAME`.
AXES_DISABLE_ACCESS_LOG = True
AXES_ENABLE_ADMIN = False
# Never stored with the failed attempt: the TOTP code of the login's second step.
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "code"]
# The name authenticator apps show beside the code.
OTP_TOTP_ISSUER = "Sirekap Tracker"
# Sessions end after SESSION_IDLE_MINUTES without activity (an HTMX poll is not activity), and at
# the latest 12 hours after the login (accounts.middleware), or when the browser closes: office
# computers are shared.
SESSION_IDLE_MINUTES = config.env_int("SESSION_IDLE_MINUTES", 30)
SESSION_COOKIE_AGE = 12 * 3600
SESSION_EXPIRE_AT_BROWSER_CLOSE = True

# --- Security. The production values apply whenever DEBUG is off.

SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_SSL_REDIRECT = config.env_bool("SECURE_SSL_REDIRECT", default=False)
# The proxy in front (nginx): only from these addresses is X-Forwarded-For believed (the client
# address of the intake's rate limits), and gunicorn (gunicorn.conf.py reads the same variable)
# takes X-Forwarded-Proto from them alone, setting the scheme Django reads; so Django itself
# trusts no forwarded header (no SECURE_PROXY_SSL_HEADER: it would believe any client).
FORWARDED_ALLOW_IPS = config.env_addresses("FORWARDED_ALLOW_IPS", ["127.0.0.1", "::1"])
SESSION_COOKIE_SECURE = not DEBUG and config.env_bool("SECURE_COOKIES", default=True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# Browsers honour HSTS only on HTTPS responses, and Django sends it only on secure requests.
SECURE_HSTS_SECONDS = 0 if DEBUG else config.env_int("SECURE_HSTS_SECONDS", 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = config.env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = config.env_bool("SECURE_HSTS_PRELOAD", default=True)
# The containers' health checks ask over plain HTTP from inside; a redirect would fail them.
SECURE_REDIRECT_EXEMPT = [r"^livez$", r"^healthz$"]
# Only our own files: no inline script or style anywhere (templates use classes of app.css;
# htmx and live.js are files), no plugin, no framing (with X_FRAME_OPTIONS for old browsers).
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

# --- Operations (docs/operations.md). /metrics answers only `Authorization: Bearer <token>`;
# unset, it is off (404).
METRICS_TOKEN = config.env_token("METRICS_TOKEN", min_length=16)

# --- Logs: JSON lines in production, readable text in development (sirekap_tracker/logs.py).
LOG_FORMAT = config.env_choice("LOG_FORMAT", "text" if DEBUG else "json", logs.FORMATS)
LOG_LEVEL = config.env_str("LOG_LEVEL", "INFO").upper()
LOGGING = logs.logging_config(log_format=LOG_FORMAT, level=LOG_LEVEL)
logs.structlog_configure()
# Carries what a request bound (its id) in the headers of the tasks it sends, and binds it again
# in the worker for the task's lines. Its own lines for each task's start and end repeat
# Celery's (received, succeeded): those go below INFO.
DJANGO_STRUCTLOG_CELERY_ENABLED = True
DJANGO_STRUCTLOG_CELERY_DEFAULT_LOG_LEVEL = logging.DEBUG
