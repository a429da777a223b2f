"""Django settings for ketaclinic: every knob is a KETACLINIC_* environment variable.

See docs/configuration.md for the full list. Defaults give a working local install on an
embedded SQLite database under ./var; production sets KETACLINIC_DATABASE_URL to PostgreSQL.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url

from ketaclinic.site.env import env_bool, env_int, env_list, env_str

PACKAGE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("KETACLINIC_DATA_DIR", "var")).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    configured = env_str("KETACLINIC_SECRET_KEY")
    if configured:
        return configured
    # A local install keeps a generated key beside its database so sessions survive restarts.
    key_file = DATA_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("KETACLINIC_DEBUG", False)
ALLOWED_HOSTS = env_list("KETACLINIC_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("KETACLINIC_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "axes",
    "simple_history",
    "django_htmx",
    "template_partials",
    "ketaclinic.accounts",
    "ketaclinic.audit",
    "ketaclinic.patients",
    "ketaclinic.measures",
    "ketaclinic.portal",
    "ketaclinic.inventory",
    "ketaclinic.treatment",
    "ketaclinic.dosing",
    "ketaclinic.fhir",
    "ketaclinic.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "ketaclinic.audit.middleware.RequestIdMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    # Before IdleLogoutMiddleware: it adds a "signed out after ..." message.
    "django.contrib.messages.middleware.MessageMiddleware",
    "ketaclinic.accounts.middleware.IdleLogoutMiddleware",
    "ketaclinic.accounts.middleware.ClinicMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "ketaclinic.site.urls"
WSGI_APPLICATION = "ketaclinic.site.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "home"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [PACKAGE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "ketaclinic.accounts.context_processors.clinic",
            ],
        },
    }
]

# Database: embedded SQLite by default, PostgreSQL via KETACLINIC_DATABASE_URL.
DATABASE_URL = env_str("KETACLINIC_DATABASE_URL", f"sqlite:///{DATA_DIR / 'ketaclinic.sqlite3'}")
_db = dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("KETACLINIC_CONN_MAX_AGE", 600))
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE transactions serialise writers up front, so hash chains and counters never
    # see a stale head; WAL lets readers carry on while one writer works.
    _db["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    _db.setdefault("CONN_HEALTH_CHECKS", True)
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Passwords: argon2 first (new hashes), PBKDF2 kept only to read old ones.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

# Lockout after repeated failures (django-axes): default 5 in 15 minutes, per username.
AXES_FAILURE_LIMIT = env_int("KETACLINIC_LOCKOUT_FAILURES", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("KETACLINIC_LOCKOUT_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["username"]
# Locking by IP too would let five typos behind one clinic's NAT lock out every colleague;
# per-account lockout cannot be dodged by rotating user agents or cookies.
SILENCED_SYSTEM_CHECKS = ["axes.W006"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
AXES_VERBOSE = False
AXES_SENSITIVE_PARAMETERS = ["password", "username"]

# Sessions live in the database so app processes stay stateless.
SESSION_ENGINE = "django.contrib.sessions.backends.db"
IDLE_TIMEOUT_SECONDS = env_int("KETACLINIC_IDLE_TIMEOUT_SECONDS", 15 * 60, minimum=5)
SESSION_COOKIE_AGE = 12 * 60 * 60  # hard ceiling of a working day; idle logoff is separate
SESSION_EXPIRE_AT_BROWSER_CLOSE = True

# Cookies and headers. KETACLINIC_COOKIE_SECURE=false only for a local demo over plain HTTP.
COOKIE_SECURE = env_bool("KETACLINIC_COOKIE_SECURE", True)
SESSION_COOKIE_SECURE = COOKIE_SECURE
CSRF_COOKIE_SECURE = COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Strict"
CSRF_COOKIE_SAMESITE = "Strict"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SECURE_SSL_REDIRECT = env_bool("KETACLINIC_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("KETACLINIC_HSTS_SECONDS", 0, minimum=0)
if env_bool("KETACLINIC_BEHIND_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'none'"],
        "object-src": ["'none'"],
    }
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"  # stored in UTC; pages show the clinic's own time zone
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [PACKAGE_DIR / "static"]
STATIC_ROOT = Path(env_str("KETACLINIC_STATIC_ROOT", str(DATA_DIR / "static")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# The app server serves /static/ itself (see ketaclinic.site.urls) unless a proxy does.
SERVE_STATIC = env_bool("KETACLINIC_SERVE_STATIC", True)

EMAIL_BACKEND = env_str(
    "KETACLINIC_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend"
)
EMAIL_HOST = env_str("KETACLINIC_EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("KETACLINIC_EMAIL_PORT", 25)
DEFAULT_FROM_EMAIL = env_str("KETACLINIC_EMAIL_FROM", "ketaclinic <no-reply@localhost>")

SMS_BACKEND = env_str("KETACLINIC_SMS_BACKEND", "ketaclinic.notifications.ConsoleSMSBackend")
# Absolute links in messages (password resets, questionnaire links, alert emails).
SITE_URL = env_str("KETACLINIC_SITE_URL", "http://127.0.0.1:8000").rstrip("/")

# Two-factor: TOTP issuer shown in authenticator apps.
OTP_TOTP_ISSUER = env_str("KETACLINIC_TOTP_ISSUER", "ketaclinic")

# Background work (huey): SQLite file by default, Redis when KETACLINIC_HUEY_REDIS_URL is set.
HUEY_REDIS_URL = env_str("KETACLINIC_HUEY_REDIS_URL")
HUEY_IMMEDIATE = env_bool("KETACLINIC_HUEY_IMMEDIATE", False)

# Logging: request paths only carry ids; form bodies and query strings are never logged.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"no_phi": {"()": "ketaclinic.audit.logging.DropRequestDetails"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["no_phi"]}},
    "root": {"handlers": ["console"], "level": env_str("KETACLINIC_LOG_LEVEL", "WARNING")},
    # The huey consumer prints through its own handler; do not print its lines twice.
    "loggers": {"huey": {"propagate": False}},
}

HUEY = {
    "name": "ketaclinic",
    "immediate": HUEY_IMMEDIATE,
    "utc": True,
    "consumer": {"workers": 2, "worker_type": "thread", "periodic": True},
}
if HUEY_REDIS_URL:
    HUEY.update({"huey_class": "huey.RedisHuey", "url": HUEY_REDIS_URL})
else:
    HUEY.update({"huey_class": "huey.SqliteHuey", "filename": str(DATA_DIR / "huey.sqlite3")})
INSTALLED_APPS.append("huey.contrib.djhuey")
