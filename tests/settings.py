"""Test settings: the real settings module, fed the environment a test run needs.

KETACLINIC_TEST_DATABASE_URL picks PostgreSQL; without it tests run on SQLite.
"""

import os
import tempfile

os.environ.setdefault("KETACLINIC_DATA_DIR", tempfile.mkdtemp(prefix="ketaclinic-test-"))
os.environ["KETACLINIC_COOKIE_SECURE"] = "false"  # the live-server browser tests use plain HTTP
os.environ.setdefault("KETACLINIC_HUEY_IMMEDIATE", "true")
_test_db = os.environ.get("KETACLINIC_TEST_DATABASE_URL")
if _test_db:
    os.environ["KETACLINIC_DATABASE_URL"] = _test_db
else:
    os.environ["KETACLINIC_DATABASE_URL"] = "sqlite:///" + os.path.join(
        os.environ["KETACLINIC_DATA_DIR"], "test.sqlite3"
    )
os.environ.setdefault("KETACLINIC_IDLE_TIMEOUT_SECONDS", "900")

from ketaclinic.site.settings import *  # noqa: E402,F403

# Production hashes with argon2 (see ketaclinic.site.settings and test_security.py); tests
# create many users, so they use a fast hasher.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
SMS_BACKEND = "ketaclinic.notifications.LocmemSMSBackend"
# The test personas' clinics keep New York time (clinic A) and the pages count days on the
# clinic's calendar; tests that compute "today" with timezone.localdate() must get the same
# day, also in the hours when UTC has already moved on to tomorrow.
TIME_ZONE = "America/New_York"
