"""Opening a tantivy index directory: the one place analyzers are registered.

tantivy persists a field's analyzer by name only, so an index opened without
registering ``mlg_words`` and ``mlg_keyword`` would fail to index or query
those fields. Everything (the indexer, the reader, reindex, the benchmark)
opens indexes through ``open_index``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import tantivy

from mlgraph.search.analysis import KEYWORD, WORDS, keyword_analyzer, words_analyzer
from mlgraph.search.mapping import FIELDS, FieldSpec

WRITER_HEAP = 64_000_000  # bytes of indexing buffer before tantivy flushes a segment
BULK_HEAP = 256_000_000  # for a rebuild: fewer, larger segments, less merging


def tantivy_schema(fields: Sequence[FieldSpec] = FIELDS) -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    for f in fields:
        if f.kind == "text":
            builder.add_text_field(
                f.name,
                stored=f.stored,
                fast=f.fast,
                tokenizer_name=f.tokenizer,
                index_option=f.index_option,
            )
        elif f.kind == "integer":
            builder.add_integer_field(f.name, stored=f.stored, indexed=f.indexed, fast=f.fast)
        elif f.kind == "float":
            builder.add_float_field(f.name, stored=f.stored, indexed=f.indexed, fast=f.fast)
        else:
            builder.add_bytes_field(f.name, stored=f.stored, indexed=f.indexed, fast=f.fast)
    return builder.build()


def open_index(path: Path, fields: Sequence[FieldSpec] = FIELDS) -> tantivy.Index:
    """The index at ``path`` (created empty with ``fields`` if there is none), analyzers
    registered. An existing index keeps the fields it was created with (its numeric
    filter fields follow the type schema it was built for: see ``mapping.index_fields``).

    The reader reloads only when told to (``Index.reload``): readers check for
    new commits themselves, which costs a ``stat`` and no polling thread.
    """
    path.mkdir(parents=True, exist_ok=True)
    if tantivy.Index.exists(str(path)):
        index = tantivy.Index.open(str(path))
    else:
        index = tantivy.Index(tantivy_schema(fields), path=str(path), reuse=True)
    words, keyword = words_analyzer(), keyword_analyzer()
    index.register_tokenizer(WORDS, words)
    index.register_tokenizer(KEYWORD, keyword)
    index.register_fast_field_tokenizer(KEYWORD, keyword)
    index.config_reader(reload_policy="manual")
    return index


def writer(index: tantivy.Index, heap: int = WRITER_HEAP) -> tantivy.IndexWriter:
    # One indexing thread: the service shares its cores with the store and the API.
    return index.writer(heap_size=heap, num_threads=1)
