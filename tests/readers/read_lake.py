#!/usr/bin/env python3
"""Read every dataset of a Hive-partitioned Parquet output the way users do,
and check that each reader returns exactly what the files hold.

    <out_dir>/<dataset>/<key>=<value>[/<key2>=<value2>...]/part-*.parquet

Reference ("files"): every data file read on its own with pyarrow.parquet
(no partition discovery), plus one string column per partition key holding the
directory's value -- unless the file already has a column of that name, in
which case the reference keeps the file's own values and the "files" check
fails when they differ from the directory value (readers replace such a column
with the directory value, so what users see would not be what was written).

Readers (each must return the reference rows as a multiset, column by column):
  duckdb         read_parquet('<ds>/*/*.parquet', hive_partitioning=true, union_by_name=true)
  pyarrow        pyarrow.dataset.dataset('<ds>', format='parquet', partitioning='hive')
  polars         polars.scan_parquet('<ds>/**/*.parquet', hive_partitioning=True)
  pq_read_table  pyarrow.parquet.read_table('<ds>')  (what pandas.read_parquet(dir) does; opt-in)
  spark          spark.read.parquet('<ds>')         (schema inference; with --spark)
  spark_ddl      DDL from --spark-ddl-cmd, then SELECT *  (with --spark and --spark-ddl-cmd)

Every reader's result becomes a pyarrow Table (Spark through DataFrame.toArrow(),
PySpark >= 4; never collect(), whose datetimes are naive in the Python
process's local zone).  Types are compared after normalising representation
details that do not change values (large_string vs string, list item field
names, 'Etc/UTC' vs 'UTC', dictionary encoding).  Values are compared as exact
Python objects (Decimal, tz-aware datetime, date, int, str, nested tuples), as
a multiset of whole rows; on a mismatch the differing columns are named.

Output: one line per (reader, dataset), then "N passed, M failed".
Exit status 1 on any failure, 2 on a usage error.

Dependencies: pyarrow always; duckdb / polars / pyspark only for the readers
asked for (a requested reader that cannot be imported is a failure).

Examples:
  read_lake.py out/
  read_lake.py out/ bill_summary focus --readers duckdb,polars
  read_lake.py out/ --spark --spark-ddl-cmd \
      "hcbill schema {dataset} --format spark --location {location}"
"""
from __future__ import annotations

import argparse
import collections
import math
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
import urllib.parse

import pyarrow as pa
import pyarrow.parquet as pq

DEFAULT_READERS = ["duckdb", "pyarrow", "polars"]
ALL_READERS = ["duckdb", "pyarrow", "polars", "pq_read_table", "spark", "spark_ddl"]
EXAMPLES = 3  # example values shown per differing column

_PART_RE = re.compile(r"^([^=]+)=(.*)$")


def skipped_name(name: str) -> bool:
    """Names Spark/Hive/pyarrow treat as hidden (e.g. _manifest.json, .hcbill)."""
    return name.startswith((".", "_"))


# --------------------------------------------------------------------------
# Discovery
# --------------------------------------------------------------------------

class Dataset:
    """A dataset directory: its data files and their partition values."""

    def __init__(self, name: str, path: str):
        self.name = name
        self.path = os.path.abspath(path)
        self.files: list[tuple[str, list[tuple[str, str]]]] = []  # (path, [(key, value)])
        self.keys: list[str] = []
        self.problems: list[str] = []

    def scan(self) -> None:
        for dirpath, dirnames, filenames in os.walk(self.path):
            dirnames[:] = sorted(d for d in dirnames if not skipped_name(d))
            for fn in sorted(filenames):
                if skipped_name(fn) or not fn.endswith(".parquet"):
                    continue
                rel_dir = os.path.relpath(dirpath, self.path)
                parts = [] if rel_dir == "." else rel_dir.split(os.sep)
                kv = []
                for p in parts:  # directories only: a file name may contain '=' (part-hex=...)
                    m = _PART_RE.match(p)
                    if not m:
                        self.problems.append(f"{os.path.join(rel_dir, fn)}: directory {p!r} is not key=value")
                        break
                    # Hive escapes special characters as %XX; readers unescape them.
                    kv.append((m.group(1), urllib.parse.unquote(m.group(2))))
                else:
                    self.files.append((os.path.join(dirpath, fn), kv))
        keysets = {tuple(k for k, _ in kv) for _, kv in self.files}
        if len(keysets) > 1:
            self.problems.append(f"files disagree on partition keys: {sorted(keysets)}")
        self.keys = list(next(iter(keysets))) if keysets else []
        if not self.files:
            self.problems.append("no .parquet data files")


def discover(out_dir: str, names: list[str]) -> list[Dataset]:
    """Datasets named, or every non-hidden subdirectory with key=value subdirectories."""
    if names:
        return [Dataset(n, os.path.join(out_dir, n)) for n in names]
    found = []
    for n in sorted(os.listdir(out_dir)):
        p = os.path.join(out_dir, n)
        if skipped_name(n) or not os.path.isdir(p):
            continue
        if any(_PART_RE.match(c) and os.path.isdir(os.path.join(p, c)) for c in os.listdir(p)):
            found.append(Dataset(n, p))
    return found


# --------------------------------------------------------------------------
# Reference: each file on its own + directory values
# --------------------------------------------------------------------------

def reference(ds: Dataset) -> tuple[pa.Table, list[str]]:
    """The concatenation of all files (+ partition columns) and 'files' problems."""
    tables, problems = [], []
    for path, kv in ds.files:
        # ParquetFile.read(): the file alone, no partition discovery from its path.
        t = pq.ParquetFile(path).read()
        rel = os.path.relpath(path, ds.path)
        for key, value in kv:
            if key in t.column_names:
                # A data column named like the partition key: readers show the
                # directory value instead, so it must equal it on every row.
                col = t.column(key)
                vals = col.cast(pa.string()).to_pylist() if col.type != pa.string() else col.to_pylist()
                bad = [v for v in vals if v != value]
                if bad:
                    problems.append(
                        f"column {key}: {len(bad)} of {len(vals)} rows in {rel} differ from the "
                        f"directory value {value!r} (e.g. {bad[0]!r})")
            else:
                t = t.append_column(pa.field(key, pa.string()), pa.array([value] * t.num_rows, pa.string()))
        tables.append(t)
    if not tables:
        return pa.table({}), problems
    # Files of one dataset may differ slightly (e.g. a column added later): null-fill.
    return pa.concat_tables(tables, promote_options="permissive"), problems


# --------------------------------------------------------------------------
# Readers: each returns a pyarrow Table
# --------------------------------------------------------------------------

def read_duckdb(ds: Dataset, ctx: dict) -> pa.Table:
    import duckdb
    con = ctx.get("duckdb")
    if con is None:
        con = ctx["duckdb"] = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")  # default is the machine's zone (tz 'Etc/UTC' here)
    # The glob users write (and `hcbill schema --format duckdb` emits): one '*' per
    # partition level, so side files like _manifest.json are not matched.
    glob = ds.path + "/*" * len(ds.keys) + "/*.parquet"
    rel = con.sql("SELECT * FROM read_parquet(?, hive_partitioning = true, union_by_name = true)"
                  .replace("?", sql_str(glob)))
    # duckdb 2.x: .arrow() returns a RecordBatchReader; to_arrow_table() a Table.
    for meth in ("to_arrow_table", "fetch_arrow_table"):
        if hasattr(rel, meth):
            return getattr(rel, meth)()
    r = rel.arrow()
    return r.read_all() if hasattr(r, "read_all") else r


def read_pyarrow(ds: Dataset, ctx: dict) -> pa.Table:
    import pyarrow.dataset as pads
    # Default ignore_prefixes ['.', '_'] skips _manifest.json.
    return pads.dataset(ds.path, format="parquet", partitioning="hive").to_table()


def read_pq_read_table(ds: Dataset, ctx: dict) -> pa.Table:
    # pandas.read_parquet(dir) goes through this; partition columns come back
    # dictionary-encoded, and a data column named like a key is a merge error.
    return pq.read_table(ds.path)


def read_polars(ds: Dataset, ctx: dict) -> pa.Table:
    import polars as pl
    # A bare directory fails when it holds _manifest.json ("different file
    # extensions"); the glob is what polars itself tells users to write.
    return pl.scan_parquet(ds.path + "/**/*.parquet", hive_partitioning=True).collect().to_arrow()


def spark_session(ctx: dict):
    """One local SparkSession for the whole run (startup takes 10-20 s)."""
    if "spark" in ctx:
        return ctx["spark"]
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # no "hostname resolves to loopback" probe
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # Python workers = this venv
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark.sql import SparkSession
    t0 = time.time()
    ctx["spark_tmp"] = tempfile.mkdtemp(prefix="read_lake_spark_")
    spark = (SparkSession.builder.master("local[2]").appName("read_lake")
             .config("spark.sql.session.timeZone", "UTC")
             .config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false")
             .config("spark.sql.shuffle.partitions", "2")
             .config("spark.driver.memory", os.environ.get("READ_LAKE_SPARK_MEMORY", "2g"))
             .config("spark.sql.catalogImplementation", "in-memory")  # no metastore_db/
             .config("spark.sql.warehouse.dir", os.path.join(ctx["spark_tmp"], "warehouse"))
             .config("spark.local.dir", os.path.join(ctx["spark_tmp"], "local"))
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    ctx["spark"] = spark
    ctx["spark_startup"] = time.time() - t0
    print(f"# spark {spark.version} session started in {ctx['spark_startup']:.1f}s", flush=True)
    return spark


def spark_to_arrow(df) -> pa.Table:
    if hasattr(df, "toArrow"):  # PySpark >= 4.0: exact types, timestamps tz=session zone
        return df.toArrow()
    raise RuntimeError("PySpark >= 4.0 is needed (DataFrame.toArrow); collect() loses the time zone")


def read_spark(ds: Dataset, ctx: dict) -> pa.Table:
    spark = spark_session(ctx)
    return spark_to_arrow(spark.read.parquet(ds.path))


def split_sql(text: str) -> list[str]:
    """Split on ';' outside quotes and backticks; drop empty statements."""
    out, cur, quote = [], [], None
    for ch in text:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = None
        elif ch in "'\"`":
            quote = ch
            cur.append(ch)
        elif ch == ";":
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return [s.strip() for s in out if s.strip() and not all(
        l.strip().startswith("--") or not l.strip() for l in s.splitlines())]


_CREATE_RE = re.compile(
    r"CREATE\s+(?:OR\s+REPLACE\s+)?(?:EXTERNAL\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?([`\w.]+)", re.I)


def read_spark_ddl(ds: Dataset, ctx: dict) -> pa.Table:
    spark = spark_session(ctx)
    out_dir = os.path.dirname(ds.path)
    cmd = (ctx["ddl_cmd"].replace("{dataset}", shlex.quote(ds.name))
           .replace("{location}", shlex.quote(out_dir))
           .replace("{dataset_dir}", shlex.quote(ds.path)))
    proc = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"DDL command exited {proc.returncode}: {cmd}\n{proc.stderr.strip()[:500]}")
    m = _CREATE_RE.search(proc.stdout)
    if not m:
        raise RuntimeError(f"no CREATE TABLE in the output of: {cmd}\n{proc.stdout[:500]}")
    table = m.group(1)
    # A fresh in-memory catalog per run: a table of that name can only come from
    # an earlier dataset of this run, and IF NOT EXISTS would silently reuse it.
    if spark.catalog.tableExists(table.replace("`", "")):
        raise RuntimeError(f"table {table} already registered by another dataset")
    for stmt in split_sql(proc.stdout):
        spark.sql(stmt)  # CREATE TABLE ... LOCATION; MSCK REPAIR TABLE (needed: else 0 rows)
    return spark_to_arrow(spark.sql(f"SELECT * FROM {table}"))


READERS = {
    "duckdb": read_duckdb,
    "pyarrow": read_pyarrow,
    "polars": read_polars,
    "pq_read_table": read_pq_read_table,
    "spark": read_spark,
    "spark_ddl": read_spark_ddl,
}


def error_summary(e: BaseException) -> str:
    """One line: for a Py4J/Spark error, the Spark error class line, not the stack."""
    text = str(e)
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    spark = [l for l in lines if re.search(r"\[[A-Z][A-Z0-9_.]+\]", l)]
    caused = [l for l in lines if l.startswith("Caused by:")]
    best = spark[0] if spark else caused[-1] if caused else " ".join(lines[:3])
    return f"{type(e).__name__}: {' '.join(best.split())}"[:500]


def sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


# --------------------------------------------------------------------------
# Comparison
# --------------------------------------------------------------------------

_UTC_NAMES = {"UTC", "Etc/UTC", "+00:00", "Z", "GMT", "Etc/GMT", "utc", "Universal", "Zulu"}


def norm_type(t: pa.DataType) -> pa.DataType:
    """Representation-free type: what a user would call the same type."""
    if pa.types.is_dictionary(t):
        return norm_type(t.value_type)
    if pa.types.is_large_string(t) or getattr(pa.types, "is_string_view", lambda _: False)(t):
        return pa.string()
    if pa.types.is_large_binary(t) or getattr(pa.types, "is_binary_view", lambda _: False)(t):
        return pa.binary()
    if pa.types.is_list(t) or pa.types.is_large_list(t) or getattr(pa.types, "is_list_view", lambda _: False)(t) \
            or getattr(pa.types, "is_large_list_view", lambda _: False)(t):
        return pa.list_(norm_type(t.value_type))  # item field name ('item'/'element'/'l') dropped
    if pa.types.is_fixed_size_list(t):
        return pa.list_(norm_type(t.value_type))
    if pa.types.is_struct(t):
        return pa.struct([pa.field(t.field(i).name, norm_type(t.field(i).type)) for i in range(t.num_fields)])
    if pa.types.is_map(t):
        return pa.map_(norm_type(t.key_type), norm_type(t.item_type))
    if pa.types.is_timestamp(t):
        tz = t.tz
        if tz in _UTC_NAMES:
            tz = "UTC"
        return pa.timestamp(t.unit, tz=tz)
    return t


def canon(v):
    """A hashable, exact form of a Python value from to_pylist()."""
    if isinstance(v, dict):
        return tuple((k, canon(x)) for k, x in v.items())
    if isinstance(v, (list, tuple)):
        return tuple(canon(x) for x in v)
    if isinstance(v, float) and math.isnan(v):
        return ("NaN",)
    return v  # Decimal, datetime (aware: compares as instant), date, int, str, bytes, bool, None


def column_values(table: pa.Table, name: str, typ: pa.DataType) -> list:
    col = table.column(name)
    if col.type != typ:
        try:
            col = col.cast(typ)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass  # a real type difference: compare the values as they are
    return [canon(v) for v in col.to_pylist()]


def short(v, n=60) -> str:
    s = repr(v)
    return s if len(s) <= n else s[: n - 3] + "..."


def compare(ref: pa.Table, got: pa.Table, cache: dict | None = None) -> list[str]:
    """Problems found comparing a reader's table with the reference; [] if equal.

    cache: a dict kept per reference table, so its values are converted once.
    """
    cache = {} if cache is None else cache
    problems = []
    ref_cols, got_cols = ref.column_names, got.column_names
    missing = [c for c in ref_cols if c not in got_cols]
    extra = [c for c in got_cols if c not in ref_cols]
    if missing:
        problems.append(f"missing columns {missing}")
    if extra:
        problems.append(f"extra columns {extra}")
    if len(set(got_cols)) != len(got_cols):
        problems.append(f"duplicate column names {sorted(c for c in set(got_cols) if got_cols.count(c) > 1)}")
    if got.num_rows != ref.num_rows:
        problems.append(f"{got.num_rows} rows, files hold {ref.num_rows}")
    common = [c for c in ref_cols if c in got_cols and got_cols.count(c) == 1]
    ref_vals, got_vals = {}, {}
    for c in common:
        rt, gt = norm_type(ref.schema.field(c).type), norm_type(got.schema.field(c).type)
        if rt != gt:
            problems.append(f"column {c}: type {gt} (files: {rt})")
        if c not in cache:
            cache[c] = column_values(ref, c, rt)
        ref_vals[c] = cache[c]
        got_vals[c] = column_values(got, c, rt)
    # Whole rows as a multiset (row order is not part of a dataset's meaning).
    ref_rows = collections.Counter(zip(*(ref_vals[c] for c in common))) if common else collections.Counter()
    got_rows = collections.Counter(zip(*(got_vals[c] for c in common))) if common else collections.Counter()
    if ref_rows == got_rows:
        return problems
    if got.num_rows != ref.num_rows:
        # Rows lost or added: name them rather than every column.
        absent, unexpected = ref_rows - got_rows, got_rows - ref_rows
        for what, rows in (("file rows not returned", absent), ("returned rows not in the files", unexpected)):
            if rows:
                example = dict(zip(common, next(iter(rows))))
                problems.append(f"{sum(rows.values())} {what}, e.g. {short(example, 300)}")
        return problems
    # Name the columns: those whose value multiset differs ...
    bad = []
    for c in common:
        rc, gc = collections.Counter(ref_vals[c]), collections.Counter(got_vals[c])
        if rc != gc:
            bad.append(c)
            unexpected, absent = gc - rc, rc - gc
            problems.append(
                f"column {c}: {sum(absent.values())} of {ref.num_rows} values differ; got "
                f"{', '.join(short(v) for v in list(unexpected)[:EXAMPLES]) or '-'} "
                f"instead of {', '.join(short(v) for v in list(absent)[:EXAMPLES]) or '-'}")
    if not bad:
        # ... or, if each column's values are all there but rows are mixed up,
        # the columns whose removal makes the rows match.
        for i, c in enumerate(common):
            keep = common[:i] + common[i + 1:]
            if collections.Counter(zip(*(ref_vals[k] for k in keep))) == \
                    collections.Counter(zip(*(got_vals[k] for k in keep))):
                bad.append(c)
        problems.append(f"rows differ (values moved between rows) in column(s) {bad or common}")
    return problems


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("out_dir")
    ap.add_argument("datasets", nargs="*", help="dataset directory names (default: all)")
    ap.add_argument("--readers", default=",".join(DEFAULT_READERS),
                    help=f"comma-separated, of {ALL_READERS} (default: %(default)s)")
    ap.add_argument("--spark", action="store_true", help="also read with Spark (slow: JVM start)")
    ap.add_argument("--spark-ddl-cmd", metavar="CMD",
                    help="shell command printing a Spark DDL for a dataset; {dataset}, {location} "
                         "(= out_dir, absolute) and {dataset_dir} are substituted, shell-quoted")
    args = ap.parse_args(argv)

    readers = [r for r in args.readers.split(",") if r]
    if args.spark:
        readers += [r for r in ["spark"] + (["spark_ddl"] if args.spark_ddl_cmd else []) if r not in readers]
    unknown = [r for r in readers if r not in READERS]
    if unknown or ("spark_ddl" in readers and not args.spark_ddl_cmd):
        ap.error(f"unknown readers {unknown}" if unknown else "spark_ddl needs --spark-ddl-cmd")
    if not os.path.isdir(args.out_dir):
        ap.error(f"{args.out_dir}: not a directory")

    ctx = {"ddl_cmd": args.spark_ddl_cmd}
    passed = failed = 0
    timings = collections.defaultdict(float)

    def report(ok: bool, reader: str, ds: str, detail: str) -> None:
        nonlocal passed, failed
        passed += ok
        failed += not ok
        print(f"{'PASS' if ok else 'FAIL'} {reader:<13} {ds}: {detail}", flush=True)

    # Import each reader's library (and start Spark) up front, so that the
    # per-dataset times below are reading times only.
    modules = {"duckdb": "duckdb", "polars": "polars", "pyarrow": "pyarrow.dataset",
               "pq_read_table": "pyarrow.parquet", "spark": "pyspark", "spark_ddl": "pyspark"}
    unavailable = {}
    for r in readers:
        t0 = time.time()
        try:
            mod = __import__(modules[r], fromlist=["_"])
            print(f"# {r}: {modules[r]} {getattr(mod, '__version__', '')} imported in {time.time() - t0:.2f}s")
            if r.startswith("spark"):
                spark_session(ctx)
        except Exception as e:
            unavailable[r] = " ".join(f"{type(e).__name__}: {e}".split())[:300]
            print(f"# {r}: unavailable: {unavailable[r]}")

    datasets = discover(args.out_dir, args.datasets)
    if not datasets:
        report(False, "files", args.out_dir, "no dataset directories with key=value subdirectories")
    for ds in datasets:
        if not os.path.isdir(ds.path):
            report(False, "files", ds.name, f"{ds.path}: no such directory")
            continue
        ds.scan()
        t0 = time.time()
        ref, problems = reference(ds) if ds.files else (pa.table({}), [])
        problems = ds.problems + problems
        report(not problems, "files", ds.name,
               "; ".join(problems) if problems else
               f"{len(ds.files)} files, {ref.num_rows} rows, {ref.num_columns} columns, "
               f"partition keys {ds.keys} ({time.time() - t0:.2f}s)")
        if not ds.files:
            continue
        ref_cache: dict = {}
        for r in readers:
            if r in unavailable:
                report(False, r, ds.name, f"reader unavailable: {unavailable[r]}")
                continue
            t0 = time.time()
            try:
                got = READERS[r](ds, ctx)
            except Exception as e:  # an error a user would hit is a failure, not a crash
                report(False, r, ds.name, f"read failed: {error_summary(e)}")
                continue
            dt = time.time() - t0
            timings[r] += dt
            t1 = time.time()
            diffs = compare(ref, got, ref_cache)
            report(not diffs, r, ds.name, "; ".join(diffs) if diffs else
                   f"{got.num_rows} rows equal (read {dt:.2f}s, compare {time.time() - t1:.2f}s)")

    if "spark" in ctx:
        ctx["spark"].stop()
    print("# read time per reader: " + (", ".join(f"{r} {t:.2f}s" for r, t in timings.items()) or "-")
          + (f"; spark startup {ctx['spark_startup']:.1f}s" if "spark_startup" in ctx else ""))
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
