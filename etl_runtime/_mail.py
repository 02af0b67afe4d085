"""The failure mail that ``ETLTask.run`` sends when a run fails.

``run`` calls ``send_failure_mail`` after the results are saved, unless ``no_mail`` (its argument,
or ``$KUBE_ETL_NO_MAIL``) turns it off. The SMTP server comes from the ``[smtp]`` section of the
task's config.ini, and the recipients from ``$KUBE_ETL_NOTIFY_EMAIL`` (which the operator sets from
``spec.notify.email``) or ``[smtp] to``. A mail that cannot be sent is logged, never raised, so a
broken mail server cannot change a run's outcome (``ETLTask._send_failure_mail`` catches what
``send_failure_mail`` does not).
"""

from __future__ import annotations

import configparser
import logging
import os
import smtplib
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from etl_runtime._config import read_option
from etl_runtime._errors import ConfigError

NO_MAIL_VARIABLE = "KUBE_ETL_NO_MAIL"
NOTIFY_EMAIL_VARIABLE = "KUBE_ETL_NOTIFY_EMAIL"
ENVIRONMENT_VARIABLE = "KUBE_ETL_ENVIRONMENT"
RUNTIME_SECTION = "kube_etl"
SMTP_SECTION = "smtp"
DEFAULT_ENVIRONMENT = "kube-etl"
DEFAULT_SMTP_PORT = 25
DEFAULT_SENDER = "kube-etl@localhost"
# Seconds that connecting and each SMTP command may take, so that a dead server cannot hold a
# finished pod for long. ``[smtp] timeout`` overrides it.
DEFAULT_SMTP_TIMEOUT_SECONDS = 30.0

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})


def no_mail_from_env(environ: Mapping[str, str] | None = None) -> bool:
    """Return whether ``$KUBE_ETL_NO_MAIL`` turns the failure mail off (1, true, yes or on)."""
    environ = os.environ if environ is None else environ
    return environ.get(NO_MAIL_VARIABLE, "").strip().lower() in TRUE_WORDS


def split_addresses(text: str) -> list[str]:
    return [address.strip() for address in text.split(",") if address.strip()]


@dataclass(frozen=True)
class MailSettings:
    """SMTP server, sender, recipients and environment name of the failure mail."""

    host: str | None
    port: int
    sender: str
    recipients: tuple[str, ...]
    starttls: bool
    user: str | None
    password: str | None
    timeout: float
    environment: str

    @classmethod
    def from_config(
        cls, config: configparser.ConfigParser, environ: Mapping[str, str] | None = None
    ) -> MailSettings:
        """Read ``[smtp]`` and ``[kube_etl] environment``; the environment variables take precedence.

        ``[smtp]`` options: host, port (default 25), from, to (comma-separated), starttls
        (boolean), user, password and timeout (seconds, default 30). ``$KUBE_ETL_NOTIFY_EMAIL``
        (comma-separated) replaces ``to``, and ``$KUBE_ETL_ENVIRONMENT`` replaces
        ``[kube_etl] environment``.
        """
        environ = os.environ if environ is None else environ

        def option(name: str) -> str | None:
            value = read_option(config, SMTP_SECTION, name)
            return value.strip() if value is not None and value.strip() else None

        recipients_text = environ.get(NOTIFY_EMAIL_VARIABLE, "").strip() or option("to") or ""
        environment = (
            environ.get(ENVIRONMENT_VARIABLE, "").strip()
            or (read_option(config, RUNTIME_SECTION, "environment") or "").strip()
            or DEFAULT_ENVIRONMENT
        )
        return cls(
            host=option("host"),
            port=_port(option("port")),
            sender=option("from") or DEFAULT_SENDER,
            recipients=tuple(split_addresses(recipients_text)),
            starttls=_boolean(config, "starttls"),
            user=option("user"),
            password=option("password"),
            timeout=_timeout(option("timeout")),
            environment=environment,
        )


def _port(text: str | None) -> int:
    if text is None:
        return DEFAULT_SMTP_PORT
    try:
        return int(text)
    except ValueError as exc:
        raise ConfigError(f"config option [{SMTP_SECTION}] port is not a number: {text!r}") from exc


def _timeout(text: str | None) -> float:
    if text is None:
        return DEFAULT_SMTP_TIMEOUT_SECONDS
    try:
        return float(text)
    except ValueError as exc:
        raise ConfigError(f"config option [{SMTP_SECTION}] timeout is not a number: {text!r}") from exc


def _boolean(config: configparser.ConfigParser, name: str) -> bool:
    if not config.has_option(SMTP_SECTION, name):
        return False
    try:
        return config.getboolean(SMTP_SECTION, name)
    except ValueError as exc:
        raise ConfigError(f"config option [{SMTP_SECTION}] {name} is not a boolean: {exc}") from exc


@dataclass(frozen=True)
class FailedRun:
    """Description of a failed run, as the failure mail reports it."""

    task_class: str
    display_name: str
    task_id: int | None
    namespace: str | None
    name: str | None
    attempt: int | None
    error: str


def failure_subject(settings: MailSettings, run: FailedRun) -> str:
    return f"[{settings.environment}] {run.task_class} failed"


def failure_body(settings: MailSettings, run: FailedRun) -> str:
    etl_task = f"{run.namespace}/{run.name}" if run.name else "(run outside Kubernetes)"
    lines = [
        f"Task {run.task_class} failed in environment {settings.environment}.",
        "",
        f"ETLTask:      {etl_task}",
        f"Task id:      {run.task_id if run.task_id is not None else '(none)'}",
        f"Attempt:      {run.attempt if run.attempt is not None else '(unknown)'}",
        f"Display name: {run.display_name}",
        f"Host:         {socket.gethostname()}",
        "",
        "Error:",
        run.error.rstrip(),
        "",
    ]
    return "\n".join(lines)


def build_failure_mail(settings: MailSettings, run: FailedRun) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = failure_subject(settings, run)
    message["From"] = settings.sender
    message["To"] = ", ".join(settings.recipients)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="kube-etl.local")
    message.set_content(failure_body(settings, run))
    return message


def send_failure_mail(
    settings: MailSettings, run: FailedRun, log: logging.LoggerAdapter[logging.Logger]
) -> bool:
    """Send the failure mail and return whether the server accepted it for every recipient.

    Returns False without sending when no recipient or no ``[smtp] host`` is configured. SMTP and
    network errors are logged with the server and the cause, and never raised.
    """
    if not settings.recipients:
        log.info(
            "no failure mail sent: no recipients; set spec.notify.email, $%s or [smtp] to",
            NOTIFY_EMAIL_VARIABLE,
        )
        return False
    if settings.host is None:
        log.warning(
            "no failure mail sent to %s: the config has no [smtp] host option",
            ", ".join(settings.recipients),
        )
        return False

    message = build_failure_mail(settings, run)
    server = f"{settings.host}:{settings.port}"
    try:
        with smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout) as smtp:
            if settings.starttls:
                smtp.starttls()
            if settings.user is not None:
                smtp.login(settings.user, settings.password or "")
            refused = smtp.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:
        log.error(
            "sending the failure mail to %s through %s failed: %s: %s",
            ", ".join(settings.recipients),
            server,
            type(exc).__name__,
            exc,
        )
        return False
    if refused:
        log.error(
            "the SMTP server %s rejected the failure mail for %s: %s",
            server,
            ", ".join(sorted(refused)),
            refused,
        )
        return False
    log.info("sent the failure mail to %s through %s", ", ".join(settings.recipients), server)
    return True
