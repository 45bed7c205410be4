"""Writes the Parquet twin of every JSONL example here (examples/data/README.md): the same records, column by column,
with chat messages as list<struct<role, content>>. Deterministic: the same pyarrow version writes the same bytes, so
the committed .parquet files only change when a .jsonl file does.

    "$(bash tools/python/venv.sh)/bin/python" examples/data/make_parquet.py
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent


def main() -> None:
    for source in sorted(HERE.glob("*.jsonl")):
        rows = [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
        table = pa.Table.from_pylist(rows)
        target = source.with_suffix(".parquet")
        pq.write_table(table, target, compression="snappy")
        print(f"{target.relative_to(HERE.parents[1])}: {table.num_rows} rows, {table.schema.types}")


if __name__ == "__main__":
    main()
