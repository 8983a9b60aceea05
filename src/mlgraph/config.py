"""Settings from ``MLGRAPH_*`` environment variables and an optional TOML file.

The file is ``$MLGRAPH_CONFIG`` if set, else ``mlgraph.toml`` in the working
directory if present. Environment variables win over the file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from mlgraph.catalog.uri import DEFAULT_SCHEME

CONFIG_ENV = "MLGRAPH_CONFIG"
DEFAULT_CONFIG_FILE = "mlgraph.toml"


def config_file() -> Path | None:
    named = os.environ.get(CONFIG_ENV)
    if named:
        path = Path(named)
        if not path.is_file():
            raise FileNotFoundError(f"{CONFIG_ENV}={named}: no such file")
        return path
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.is_file() else None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MLGRAPH_", extra="forbid")

    data_dir: Path = Field(Path(".mlgraph"), description="Where the embedded store and index live.")
    store_url: str | None = Field(
        None, description="sqlite:///path or postgresql://…; default: SQLite in data_dir."
    )
    schema_file: Path | None = Field(
        None, description="A type schema to use instead of the built-in one."
    )
    uri_scheme: str = Field(DEFAULT_SCHEME, description="The scheme of entity URIs.")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    sources: dict[str, str] = Field(
        default_factory=dict,
        description='Base URLs by source name, e.g. {"registry": "http://registry:8080"}; '
        "default: the reference sources on 127.0.0.1:9101-9106.",
    )
    connectors_dir: Path | None = Field(None, description="A folder of YAML connectors to add.")
    workers: bool = Field(True, description="Run hydration workers in the API process.")
    enrich: bool = Field(
        True, description="With the workers, hydrate stubs and maintain inferred relationships."
    )
    infer: bool = Field(
        True,
        description="Maintain inferred relationships from the change feed (off: run "
        "`mlgraph enrich --rederive` on a schedule instead).",
    )
    search: bool = Field(
        True, description="With the workers, follow the change feed into the search index."
    )
    reverse: bool = Field(
        True,
        description="With the workers, follow the change feed for saved searches: record who "
        "enters and leaves each (`mlgraph percolate` catches up by hand).",
    )
    followers: Literal["process", "inline"] = Field(
        "process",
        description="Where `mlgraph serve` runs the feed's followers (enricher, search "
        "indexer, reverse follower): 'process' starts `mlgraph follow` beside it, so they "
        "use another core; 'inline' runs them in the API process.",
    )
    follower_nice: int = Field(
        19,
        ge=0,
        le=19,
        description="How much `mlgraph follow` lowers its CPU priority (nice): when the "
        "cores are all busy, intake and hydration go first and the followers catch up after.",
    )
    traversal_cache: bool = Field(
        True,
        description="Walk lineage in an in-memory copy of the graph, built in the background "
        "at start (about 140 MB and a minute at 1M entities; docs/store.md).",
    )
    max_attempts: int = Field(8, ge=1, description="Hydration attempts before dead-lettering.")
    source_concurrency: int = Field(8, ge=1, description="Requests in flight per source.")
    source_rate_per_s: float = Field(500.0, gt=0, description="Requests per second per source.")
    source_timeout_s: float = Field(5.0, gt=0, description="Timeout of one source request.")
    nats_url: str | None = Field(None, description="Consume thin events from NATS JetStream.")
    redis_url: str | None = Field(None, description="Consume thin events from a Redis stream.")
    kafka_bootstrap: str | None = Field(None, description="Consume thin events from Kafka.")
    reconcile_every_s: float | None = Field(
        None, gt=0, description="Sweep every source this often (off by default)."
    )
    # -- the API: auth and query limits (docs/api.md) --
    auth: Literal["auto", "required", "off"] = Field(
        "auto",
        description="API tokens: 'auto' requires them as soon as one exists (`mlgraph token "
        "create`), 'required' always, 'off' never (a trusted network only).",
    )
    anonymous_read: bool = Field(
        False, description="Let requests without a token read the graph; writes still need one."
    )
    api_max_page: int = Field(
        100, ge=1, le=10_000, description="The most items one page (`first`, `limit`) may hold."
    )
    graphql_max_depth: int = Field(16, ge=1, description="The deepest GraphQL selection allowed.")
    graphql_max_aliases: int = Field(30, ge=0, description="Aliases one GraphQL document may use.")
    graphql_max_tokens: int = Field(5000, ge=10, description="Tokens a GraphQL document may hold.")
    graphql_max_cost: int = Field(
        50_000, ge=1, description="The most objects a GraphQL query may be estimated to return."
    )
    # -- notifications: streams and webhooks (docs/reverse.md#notifications) --
    notify_poll_s: float = Field(
        0.1, gt=0, le=60, description="How often waiting streams look for new transitions."
    )
    webhook_max_attempts: int = Field(
        8, ge=1, le=100, description="Attempts at a webhook delivery before it is dead."
    )
    webhook_backoff_s: float = Field(
        1.0, gt=0, description="Wait before the 2nd attempt; doubles with each failure."
    )
    webhook_backoff_max_s: float = Field(600.0, gt=0, description="The longest wait between two.")
    webhook_timeout_s: float = Field(10.0, gt=0, description="Timeout of one webhook POST.")

    @field_validator("store_url")
    @classmethod
    def _known_backend(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("sqlite", "postgresql", "postgres://")):
            raise ValueError("store_url must start with sqlite:/// or postgresql://")
        return value

    @property
    def resolved_store_url(self) -> str:
        if self.store_url:
            return self.store_url
        return f"sqlite:///{(self.data_dir / 'mlgraph.db').resolve()}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = config_file()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)
