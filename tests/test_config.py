from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from mlgraph.config import Settings


def test_defaults_put_sqlite_in_the_data_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLGRAPH_CONFIG", raising=False)
    monkeypatch.delenv("MLGRAPH_DATA_DIR", raising=False)  # the suite gives each test its own
    settings = Settings()
    assert settings.data_dir == Path(".mlgraph")
    assert settings.resolved_store_url == f"sqlite:///{tmp_path / '.mlgraph' / 'mlgraph.db'}"
    assert settings.uri_scheme == "aip"


def test_environment_overrides_the_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "mlgraph.toml"
    config.write_text('store_url = "postgresql://db/x"\nport = 9000\nuri_scheme = "acme"\n')
    monkeypatch.setenv("MLGRAPH_CONFIG", str(config))
    monkeypatch.setenv("MLGRAPH_PORT", "9100")
    settings = Settings()
    assert settings.resolved_store_url == "postgresql://db/x"
    assert settings.port == 9100
    assert settings.uri_scheme == "acme"


def test_mlgraph_toml_in_the_working_directory_is_read(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLGRAPH_CONFIG", raising=False)
    monkeypatch.delenv("MLGRAPH_DATA_DIR", raising=False)  # the suite gives each test its own
    (tmp_path / "mlgraph.toml").write_text('data_dir = "elsewhere"\n')
    assert Settings().data_dir == Path("elsewhere")


def test_bad_settings_are_clear_errors(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MLGRAPH_STORE_URL", "mysql://x")
    with pytest.raises(ValidationError, match="store_url must start with"):
        Settings()
    monkeypatch.delenv("MLGRAPH_STORE_URL")
    monkeypatch.setenv("MLGRAPH_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(FileNotFoundError, match="missing.toml: no such file"):
        Settings()
