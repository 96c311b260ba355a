"""The one settings module. Every value comes from the environment (see .env.example);
the defaults run locally with no configuration."""

from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.env import (
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_list,
    env_secret,
    env_str,
    load_env_file,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))
# `make run` writes its generated secrets here; real environment variables win.
load_env_file(Path(env_str("ENV_FILE", str(VAR_DIR / "local.env"))))

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_secret("SECRET_KEY")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
if not DEBUG:
    if not SECRET_KEY:
        raise ImproperlyConfigured("SECRET_KEY is required when DEBUG is off (set SECRET_KEY or SECRET_KEY_FILE).")
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("ALLOWED_HOSTS is required when DEBUG is off (comma-separated host names).")
elif not SECRET_KEY:
    SECRET_KEY = "insecure-local-development-key"  # noqa: S105 - only ever used with DEBUG on
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from our static files, no CDN
    "channels",
    "masking",
    "monitoring",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"), conn_max_age=env_int("DB_CONN_MAX_AGE", 0)
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
# The ASGI app serves /static/ itself (see config/asgi.py) so one process is enough locally.
SERVE_STATIC = env_bool("SERVE_STATIC", True)

LOGIN_URL = "/admin/login/"
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# --- Redis -------------------------------------------------------------------------------
# REDIS_URL (redis:// or rediss://) overrides the seed-compatible REDIS_HOST/PORT/PASSWORD/DB.
# Mappings, cache, Celery and the channel layer each get their own database so none can
# evict or flush another's keys.


def _redis_base_url() -> tuple[str, int]:
    url = env_secret("REDIS_URL")
    if url:
        parts = urlsplit(url)
        if parts.scheme not in {"redis", "rediss"}:
            raise ImproperlyConfigured(f"REDIS_URL must start with redis:// or rediss://, got {parts.scheme!r}")
        db = parts.path.lstrip("/")
        if db and not db.isdigit():
            raise ImproperlyConfigured("REDIS_URL database must be a number")
        return urlunsplit((parts.scheme, parts.netloc, "", "", "")), int(db or 0)
    host = env_str("REDIS_HOST", "127.0.0.1")
    port = env_int("REDIS_PORT", 6379, minimum=1)
    password = env_secret("REDIS_PASSWORD")
    auth = f":{quote(password, safe='')}@" if password else ""
    return f"redis://{auth}{host}:{port}", env_int("REDIS_DB", 0, minimum=0)


REDIS_BASE_URL, REDIS_DB = _redis_base_url()
MASKING_REDIS_URL = f"{REDIS_BASE_URL}/{REDIS_DB}"
CACHE_REDIS_URL = f"{REDIS_BASE_URL}/{env_int('REDIS_CACHE_DB', REDIS_DB + 1, minimum=0)}"
CELERY_REDIS_URL = f"{REDIS_BASE_URL}/{env_int('REDIS_CELERY_DB', REDIS_DB + 2, minimum=0)}"
CHANNELS_REDIS_URL = f"{REDIS_BASE_URL}/{env_int('REDIS_CHANNELS_DB', REDIS_DB + 3, minimum=0)}"
REDIS_CONNECT_TIMEOUT = env_float("REDIS_CONNECT_TIMEOUT", 2.0)
REDIS_COMMAND_TIMEOUT = env_float("REDIS_COMMAND_TIMEOUT", 5.0)
REDIS_MAX_CONNECTIONS = env_int("REDIS_MAX_CONNECTIONS", 200, minimum=1)
# How long a masked request whose identifiers a worker remembers may rely on the last mapping-epoch
# read instead of reading again, while Redis pushes no change (masking/tracking.py); 0: read every time.
MAPPING_EPOCH_TRUST_SECONDS = env_float("MAPPING_EPOCH_TRUST_SECONDS", 1.0)

CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": CACHE_REDIS_URL,
        "KEY_PREFIX": "cache",
        "OPTIONS": {
            "SOCKET_CONNECT_TIMEOUT": REDIS_CONNECT_TIMEOUT,
            "SOCKET_TIMEOUT": REDIS_COMMAND_TIMEOUT,
        },
    }
}

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [CHANNELS_REDIS_URL], "prefix": "aws-masker:channels"},
    }
}

# --- Masking -------------------------------------------------------------------------------
MASKING_TTL_SECONDS = env_int("MASKING_TTL_SECONDS", 24 * 3600, minimum=1)
MASKING_MAX_BODY_BYTES = env_int("MASKING_MAX_BODY_BYTES", 10 * 1024 * 1024, minimum=1024)

# --- Upstream Claude API -------------------------------------------------------------------
ANTHROPIC_UPSTREAM_URL = env_str("ANTHROPIC_UPSTREAM_URL", "https://api.anthropic.com").rstrip("/")
ANTHROPIC_API_KEY = env_secret("ANTHROPIC_API_KEY")
GATEWAY_AUTH_MODE = env_choice("GATEWAY_AUTH_MODE", "gateway", {"gateway", "passthrough"})
UPSTREAM_CONNECT_TIMEOUT = env_float("UPSTREAM_CONNECT_TIMEOUT", 10.0)
UPSTREAM_READ_TIMEOUT = env_float("UPSTREAM_READ_TIMEOUT", 600.0)
UPSTREAM_MAX_CONNECTIONS = env_int("UPSTREAM_MAX_CONNECTIONS", 1000, minimum=1)
# Off only in bench/proxy.py's pass-through baseline (bench/settings_passthrough.py). Deliberately not
# read from the environment: no deployment can switch masking off by configuration.
PROXY_MASKING = True

# --- Metrics -------------------------------------------------------------------------------
METRICS_TOKEN = env_secret("METRICS_TOKEN")

# --- Celery --------------------------------------------------------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", CELERY_REDIS_URL)
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", CELERY_REDIS_URL)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 3600
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TIMEZONE = "UTC"
# --- Stats rollups and task runs (monitoring/rollups.py, monitoring/taskruns.py) ----------------
ROLLUP_INTERVAL_SECONDS = env_int("ROLLUP_INTERVAL_SECONDS", 60, minimum=10)
ROLLUP_PRUNE_INTERVAL_SECONDS = env_int("ROLLUP_PRUNE_INTERVAL_SECONDS", 3600, minimum=60)
ROLLUP_MINUTE_RETENTION_HOURS = env_int("ROLLUP_MINUTE_RETENTION_HOURS", 24, minimum=0)  # 0 keeps forever
ROLLUP_HOUR_RETENTION_DAYS = env_int("ROLLUP_HOUR_RETENTION_DAYS", 31, minimum=0)
ROLLUP_DAY_RETENTION_DAYS = env_int("ROLLUP_DAY_RETENTION_DAYS", 0, minimum=0)
TASKRUN_RETENTION_DAYS = env_int("TASKRUN_RETENTION_DAYS", 14, minimum=1)

# --- Redis backups (monitoring/backups.py, docs/backups.md) ---------------------------------------
BACKUP_DIR = Path(env_str("BACKUP_DIR") or VAR_DIR / "backups")
BACKUP_INTERVAL_SECONDS = env_int("BACKUP_INTERVAL_SECONDS", 6 * 3600, minimum=60)
BACKUP_KEEP_LAST = env_int("BACKUP_KEEP_LAST", 7, minimum=1)
BACKUP_KEEP_DAYS = env_int("BACKUP_KEEP_DAYS", 7, minimum=0)
# replication: stream the snapshot over the replication protocol (works against any reachable host);
# volume: BGSAVE, then copy BACKUP_VOLUME_RDB, the server's dump.rdb on a volume shared with it.
BACKUP_SOURCE = env_choice("BACKUP_SOURCE", "replication", {"replication", "volume"})
BACKUP_VOLUME_RDB = env_str("BACKUP_VOLUME_RDB", "")
if BACKUP_SOURCE == "volume" and not BACKUP_VOLUME_RDB:
    raise ImproperlyConfigured("BACKUP_SOURCE=volume needs BACKUP_VOLUME_RDB (e.g. /redis-data/dump.rdb)")
BACKUP_TIMEOUT_SECONDS = env_int("BACKUP_TIMEOUT_SECONDS", 3600, minimum=10)
BACKUP_REDIS_SERVER = env_str("BACKUP_REDIS_SERVER", "redis-server")  # loads backups to prove they restore

# The whole schedule, in one place. Each entry's `expires` is a little shorter than its period
# so a stalled worker does not pile up runs.
CELERY_BEAT_SCHEDULE: dict = {
    "roll up the Redis counters into stats": {
        "task": "monitoring.tasks.rollup_stats",
        "schedule": ROLLUP_INTERVAL_SECONDS,
        "options": {"expires": ROLLUP_INTERVAL_SECONDS * 0.9},
    },
    "prune old stats rollups and task runs": {
        "task": "monitoring.tasks.prune_rollups",
        "schedule": ROLLUP_PRUNE_INTERVAL_SECONDS,
        "options": {"expires": ROLLUP_PRUNE_INTERVAL_SECONDS * 0.9},
    },
    "back up the mapping Redis": {
        "task": "monitoring.tasks.backup_redis",
        "schedule": BACKUP_INTERVAL_SECONDS,
        "options": {"expires": BACKUP_INTERVAL_SECONDS * 0.9},
    },
}

# --- REST framework --------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "UNAUTHENTICATED_USER": None,
    "EXCEPTION_HANDLER": "masking.errors.api_exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "AWS masking gateway",
    "DESCRIPTION": "Masks AWS identifiers before they reach an LLM, and restores them in answers.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Logging: never request bodies, never original values -------------------------------------
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)-7s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # django.request logs the request on 5xx; our error handlers log safe summaries instead.
    "loggers": {
        "django.request": {"level": "ERROR"},
        # httpx logs every upstream request at INFO; the proxy logs failures itself.
        "httpx": {"level": "WARNING"},
    },
}

# Tests (and the processes they start) share one SQLite file so a live server sees test data.
DATABASES["default"].setdefault("TEST", {})
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"]["TEST"]["NAME"] = str(VAR_DIR / "test-db.sqlite3")
