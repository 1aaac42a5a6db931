"""Configuration precedence, and secrets that never show in reprs or logs."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest

from payments_core import Config, ConfigurationError, Secret, get_logger
from payments_core.redaction import MASK, redact

SECRET = "sk-live-0123456789abcdefSECRET"


def write_toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "payments.toml"
    path.write_text(text)
    return path


def test_values_in_code_beat_environment_beat_file(tmp_path: Path) -> None:
    path = write_toml(tmp_path, '[providers.binance]\napi_key = "from-file"\nbase_url = "f"\n')
    config = Config.load(path, environ={"BINANCE_PAY_API_KEY": "from-env"})
    settings = config.for_provider("binance")
    assert settings.get("api_key", env="BINANCE_PAY_API_KEY") == "from-env"
    assert settings.get("base_url", env="BINANCE_PAY_BASE_URL") == "f"
    overridden = config.for_provider("binance", api_key="from-code")
    assert overridden.get("api_key", env="BINANCE_PAY_API_KEY") == "from-code"
    assert settings.get("missing", default="d") == "d"


def test_the_file_is_named_by_payments_config(tmp_path: Path) -> None:
    path = write_toml(
        tmp_path,
        '[payments]\nproviders = ["binance"]\ndatabase_url = "sqlite:///x.db"\n'
        "[payments.retry]\nmax_attempts = 2\n[payments.http]\nread_timeout = 3.0\n",
    )
    config = Config.load(environ={"PAYMENTS_CONFIG": str(path)})
    assert config.providers == ("binance",)
    assert config.database_url == "sqlite:///x.db"
    assert config.retry == {"max_attempts": 2}
    assert config.http.read_timeout == 3.0


def test_the_environment_allow_list_beats_the_file(tmp_path: Path) -> None:
    path = write_toml(tmp_path, '[payments]\nproviders = ["binance"]\n')
    config = Config.load(path, environ={"PAYMENTS_PROVIDERS": "a, b,"})
    assert config.providers == ("a", "b")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not toml = = 1", "not TOML"),
        ("[payments]\nproviders = 'binance'\n", "list of names"),
        ("[payments.http]\ntimeout_everything = 1\n", "payments.http"),
        ("payments = 3\n", "must be a table"),
    ],
)
def test_bad_files_are_configuration_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Config.load(write_toml(tmp_path, text), environ={})


def test_a_missing_file_is_named() -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        Config.load("/nonexistent/payments.toml", environ={})


def test_a_non_numeric_setting_names_its_source() -> None:
    settings = Config.load(environ={"X_TOLERANCE": "soon"}).for_provider("p")
    with pytest.raises(ConfigurationError, match="X_TOLERANCE"):
        settings.number("tolerance", env="X_TOLERANCE", default=1.0)


def test_secrets_are_masked_everywhere_but_reveal() -> None:
    config = Config.load(environ={"BINANCE_PAY_API_SECRET": SECRET})
    secret = config.for_provider("binance").secret("api_secret", env="BINANCE_PAY_API_SECRET")
    assert secret is not None
    assert secret.reveal() == SECRET
    for shown in (repr(secret), str(secret), f"{secret}", f"{secret!r}", repr(config),
                  repr(config.for_provider("binance", api_secret=SECRET))):  # fmt: skip
        assert SECRET not in shown
    with pytest.raises(TypeError):
        __import__("pickle").dumps(secret)


def test_logged_secrets_and_signatures_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    Secret(SECRET)
    signature = "A1E5544C2A1D7A45A2810A47AD82D940FC74E637505CB777589A84A69AC91B0C" * 2
    logger = get_logger("payments_core.test")
    with caplog.at_level(logging.DEBUG, logger="payments_core.test"):
        logger.debug("secret=%s sig=%s", SECRET, signature)
        logger.info(f"inline {SECRET}")
    text = caplog.text
    assert SECRET not in text
    assert signature not in text
    assert text.count(MASK) == 3


def test_tracebacks_are_redacted_before_any_handler_formats_them() -> None:
    Secret(SECRET)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = get_logger("payments_core.test.traceback")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            raise RuntimeError(f"the hook saw {SECRET}")
        except RuntimeError:
            logger.exception("hook failed")
            logger.error("again", stack_info=True, exc_info=True)
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "RuntimeError: the hook saw" in text  # the traceback is there
    assert "Stack (most recent call last)" in text
    assert SECRET not in text
    assert text.count(MASK) == 2


def test_pem_blocks_are_redacted() -> None:
    pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----"
    assert redact(f"key: {pem} end") == f"key: {MASK} end"
