"""Word lists and name makers for a believable ML organisation.

Names mix the conventions real platforms mix: kebab-case pipelines and
models, snake_case tables and features, and the odd camelCase feature or
PascalCase table someone created before the style guide existed.
"""

from __future__ import annotations

import random
from collections.abc import Container

DOMAINS = (
    "personalization",
    "ml-platform",
    "search",
    "ads",
    "growth",
    "content",
    "studio",
    "payments",
    "messaging",
    "games",
    "live",
    "trust-safety",
    "devices",
    "commerce",
    "partnerships",
    "data-platform",
)
TEAM_ROLES = (
    "ranking",
    "ml",
    "infra",
    "data",
    "analytics",
    "experimentation",
    "platform",
    "modeling",
    "signals",
    "quality",
)

FIRST_NAMES = (
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
    "mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter",
    "wendy", "aisha", "bruno", "chen", "dmitri", "elena", "farid", "gita", "hiro", "ines",
    "jamal", "kenji", "lucia", "mei", "nikhil", "oscar", "priya", "quentin", "rosa", "sanjay",
    "tomas", "uma", "vikram", "yara", "zoe", "amara", "bjorn", "camila", "diego", "emeka",
    "fatima", "goran", "hana", "ibrahim", "jia", "kofi", "leila", "mateo", "noor", "omar",
    "paulo",
)  # fmt: skip
LAST_NAMES = (
    "chen", "smith", "garcia", "okafor", "nakamura", "kowalski", "rossi", "singh", "muller",
    "haddad", "larsen", "silva", "kim", "nguyen", "patel", "dubois", "ivanova", "mensah",
    "tanaka", "moreau", "cohen", "santos", "berg", "ali", "novak", "fischer", "park", "lopez",
    "white", "sato", "rahman", "costa", "meyer", "reyes", "yilmaz", "kaur", "ortiz", "wong",
)  # fmt: skip
TITLES = (
    "ML Engineer",
    "Senior ML Engineer",
    "Staff ML Engineer",
    "Data Scientist",
    "Senior Data Scientist",
    "Research Scientist",
    "Data Engineer",
    "Analytics Engineer",
    "Engineering Manager",
    "Product Analyst",
)

DATA_ENTITIES = (
    "member", "title", "session", "impression", "playback", "search_query", "device",
    "payment", "artwork", "notification", "ad", "profile", "catalog", "review", "household",
    "trailer", "episode", "subscription", "campaign", "row",
)  # fmt: skip
DATA_FACTS = (
    "viewing_history", "events", "daily_agg", "snapshot", "labels", "metadata",
    "engagement_hourly", "interactions", "embeddings", "clicks", "sessions_daily",
    "attributes", "signals", "outcomes",
)  # fmt: skip
FORMATS = ("parquet", "iceberg", "delta", "avro", "tfrecord")

FEATURE_ENTITIES = (
    "user", "member", "title", "session", "device", "profile", "query", "artwork", "show",
    "genre",
)  # fmt: skip
FEATURE_METRICS = (
    "click_through_rate", "watch_time_minutes", "play_count", "completion_rate",
    "search_count", "thumbs_up_ratio", "impressions", "dwell_time_s", "add_to_list_count",
    "session_length", "abandon_rate", "rewatch_count", "skip_intro_rate", "row_position_avg",
    "days_since_last_play", "binge_score",
)  # fmt: skip
WINDOWS = ("1h", "1d", "7d", "14d", "28d", "30d", "90d")
VALUE_TYPES = ("float", "float", "int", "int", "string", "bool", "embedding<64>")
ENTITY_KEYS = ("member_id", "title_id", "session_id", "device_id", "profile_id", "query_id")

MODEL_SUBJECTS = (
    "search", "artwork", "row", "title", "churn", "fraud", "notification", "homepage",
    "continue-watching", "trailer", "ads-ctr", "payment-risk", "profile", "thumbnail",
    "language", "genre", "similarity", "kids-safety", "bandwidth", "session", "upsell",
    "retention", "query-intent", "spam",
)  # fmt: skip
MODEL_KINDS = ("ranker", "classifier", "model", "scorer", "embedder", "predictor")
MODEL_REGIONS = ("emea", "latam", "apac", "na", "kids", "tv", "mobile")
TASKS = {
    "ranker": "ranking",
    "classifier": "classification",
    "model": "ranking",
    "scorer": "regression",
    "embedder": "embedding",
    "predictor": "forecasting",
}
FRAMEWORKS = ("pytorch", "pytorch", "tensorflow", "xgboost", "lightgbm", "jax", "sklearn")

CADENCES = {
    "hourly": "0 * * * *",
    "daily": "0 3 * * *",
    "nightly": "30 1 * * *",
    "weekly": "0 4 * * 1",
}
PIPELINE_KINDS = ("etl", "aggregator", "backfill", "exporter", "feature-builder", "snapshotter")


def unique(candidate: str, taken: Container[str], variant: str = "{}-{}") -> str:
    """``candidate`` if free, else the first free ``variant.format(candidate, n)``, n = 2, 3, ..."""
    name, n = candidate, 1
    while name in taken:
        n += 1
        name = variant.format(candidate, n)
    return name


def camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(part.capitalize() for part in rest)


def pascal(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.split("_"))


ACRONYMS = {"ml", "ctr", "etl", "na", "emea", "apac", "latam", "tv", "ab"}


def title_case(kebab: str) -> str:
    """``ml-platform`` -> ``ML Platform``; snake_case too."""
    words = kebab.replace("_", "-").split("-")
    return " ".join(w.upper() if w in ACRONYMS else w.capitalize() for w in words)


def dataset_name(rng: random.Random) -> str:
    name = f"{rng.choice(DATA_ENTITIES)}_{rng.choice(DATA_FACTS)}"
    return pascal(name) if rng.random() < 0.15 else name


def feature_name(rng: random.Random) -> str:
    entity, metric, window = (
        rng.choice(FEATURE_ENTITIES),
        rng.choice(FEATURE_METRICS),
        rng.choice(WINDOWS),
    )
    if rng.random() < 0.25:
        return f"{camel(f'{entity}_{metric}')}_{window}"
    return f"{entity}_{metric}_{window}"


def model_name(rng: random.Random) -> str:
    name = f"{rng.choice(MODEL_SUBJECTS)}-{rng.choice(MODEL_KINDS)}"
    return f"{name}-{rng.choice(MODEL_REGIONS)}" if rng.random() < 0.3 else name


def pipeline_name(rng: random.Random, cadence: str) -> str:
    subject = rng.choice(DATA_ENTITIES).replace("_", "-")
    return f"{cadence}-{subject}-{rng.choice(PIPELINE_KINDS)}"
