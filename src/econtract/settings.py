"""Settings: one validated object, built once at start-up and passed in (never a global).

Every field is read from an ``ECONTRACT_*`` environment variable and documented in the README's
configuration table (a test keeps the two in step).
"""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from econtract.errors import ConfigurationError

_SMS_PLUGIN = re.compile(r"python:[A-Za-z_][\w.]*:[A-Za-z_]\w*")


class Settings(BaseSettings):
    """All configuration of one econtract installation."""

    model_config = SettingsConfigDict(env_prefix="ECONTRACT_", extra="ignore", frozen=True)

    data_dir: Path = Field(default=Path("./econtract-data"))
    """Where the SQLite database, blobs, master key and e-mail outbox live."""
    database_url: str = ""
    """SQLAlchemy URL; empty means ``sqlite:///<data_dir>/econtract.db``."""
    storage_url: str = ""
    """Blob storage; empty means ``file://<data_dir>/blobs``."""
    base_url: str = "http://127.0.0.1:8000"
    """Public address of the web app, used in links and certificate URLs."""
    email_backend: Literal["file", "smtp"] = "file"
    """``file`` writes each message to ``<data_dir>/outbox/`` as ``.eml``; ``smtp`` sends it."""
    email_from: str = "econtract <no-reply@localhost>"
    """Sender address of outgoing mail."""
    smtp_host: str = "localhost"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_user: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_starttls: bool = False
    smtp_timeout: float = Field(default=20.0, gt=0)
    sms_backend: str = "log"
    """``log`` writes each SMS to ``<data_dir>/sms-outbox/`` and the log (development);
    ``none`` turns SMS off; ``python:package.module:Class`` loads a provider plug-in (see
    ``econtract.notifications.sms``)."""
    sms_default_country_code: str = "86"
    """Country calling code for phone numbers written without ``+`` (86: mainland China)."""
    tsa_url: str = ""
    """External RFC 3161 time-stamping service; empty means the built-in TSA."""
    master_key_file: Path | None = None
    """Master key file; empty means ``<data_dir>/master.key``."""
    max_upload_mb: int = Field(default=25, ge=1, le=1024)
    """Largest accepted upload (contract PDF or attachment), in MiB."""
    max_pages: int = Field(default=500, ge=1, le=100_000)
    """Most pages a contract PDF may have."""
    max_attachments: int = Field(default=20, ge=0, le=200)
    session_idle_minutes: int = Field(default=30, ge=1)
    """A browser session ends after this long without a request."""
    session_absolute_hours: int = Field(default=12, ge=1)
    """A browser session ends this long after login, whatever happens."""
    login_max_failures: int = Field(default=5, ge=1)
    """Failed logins in a row before the account is temporarily locked."""
    login_lock_minutes: int = Field(default=15, ge=1)
    worker_poll_seconds: float = Field(default=1.0, gt=0)
    """How often an idle worker looks for new jobs."""
    sweep_seconds: float = Field(default=60.0, gt=0)
    """How often each worker runs the sweep that expires overdue contracts and sends reminders."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an absolute http(s) URL such as http://127.0.0.1:8000")
        return value.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        if value and not value.startswith(("sqlite", "postgresql")):
            raise ValueError("only sqlite:/// and postgresql+psycopg:// URLs are supported")
        return value

    @field_validator("storage_url")
    @classmethod
    def _check_storage_url(cls, value: str) -> str:
        if value and not value.startswith(("file://", "s3://")):
            raise ValueError("must be file:///PATH (s3:// comes with the S3 backend)")
        return value

    @field_validator("sms_backend")
    @classmethod
    def _check_sms_backend(cls, value: str) -> str:
        value = value.strip()
        if value in ("log", "none") or _SMS_PLUGIN.fullmatch(value):
            return value
        raise ValueError("must be log, none or python:package.module:Class")

    @field_validator("sms_default_country_code")
    @classmethod
    def _check_country_code(cls, value: str) -> str:
        value = value.strip().removeprefix("+")
        if not re.fullmatch(r"[1-9][0-9]{0,2}", value):
            raise ValueError("must be a country calling code of 1 to 3 digits, such as 86")
        return value

    @model_validator(mode="after")
    def _check_smtp(self) -> Settings:
        if self.email_backend == "smtp" and not self.smtp_host:
            raise ValueError("ECONTRACT_SMTP_HOST is required with the smtp e-mail backend")
        return self

    @cached_property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'econtract.db').resolve()}"

    @cached_property
    def resolved_storage_url(self) -> str:
        return self.storage_url or f"file://{(self.data_dir / 'blobs').resolve()}"

    @cached_property
    def resolved_master_key_file(self) -> Path:
        return self.master_key_file or self.data_dir / "master.key"

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"

    @property
    def sms_outbox_dir(self) -> Path:
        return self.data_dir / "sms-outbox"

    @property
    def secure_cookies(self) -> bool:
        """Cookies get the ``Secure`` flag whenever the public address is HTTPS."""
        return self.base_url.startswith("https://")

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment (and explicit overrides), or raise a clear error."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"ECONTRACT_{'_'.join(str(p) for p in err['loc']).upper() or 'SETTINGS'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigurationError(f"invalid configuration: {problems}") from exc
