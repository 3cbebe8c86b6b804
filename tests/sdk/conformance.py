#!/usr/bin/env python3
"""SDK conformance check for the `hcbill sim` BSS simulator.

Starts the simulator, then talks to it through the *official* Huawei Cloud Python SDK
(`huaweicloudsdkbss`, tested with 3.1.219) exactly as a real customer would, and checks
for every billing operation #1..#7 of /work/shared/reference/bss-api.md:

  1. call      - the call succeeds through BssClient + GlobalCredentials;
  2. paging    - offset += limit until offset >= total_count; rows parsed == total_count,
                 every page full except the last, total_count stable; plus "distinct":
                 no row is returned twice across pages;
  3. schema    - raw body: every JSON key (top level, rows, nested objects) is a key of the
                 SDK model's attribute_map and its JSON type fits the SDK python type;
     coverage  - every model key appears at least once across all pages (except the keys in
                 OPTIONAL_KEYS, documented below);
  4. auth      - the same request signed with a wrong SK gets HTTP 401 (APIGW.0301);
  5. invalid   - an out-of-range parameter gets HTTP 400 with error_code CBC.0100.
Plus: a DAILY res-records/query, a member's res-fee-records with method=sub_customer,
and a customer-scope check (method=oneself rows never belong to a member, sub_customer
rows only to that member).

Extractor requests (labels "x <dataset> <account>"): every request the Rust extractors
(src/source/datasets/*.rs + src/pipeline/mod.rs) send, with the same parameter names,
values and types, paged with the extractors' limit (1000; 100 for account-change-records
and sub-customers) and run through checks 1-3 and the scope check, plus:
  request  - the request the SDK put on the wire (query string for GET, JSON body for POST)
             carries exactly the extractor's parameters (and offset/limit) on every page, the
             SDK model declares each one with the type the extractor sends (str/int/bool),
             and POST bodies have the same JSON types (statistic_type an integer, etc.);
  fanout   - every usage/summary row has the non-empty resource_id the details fan out on.
Accounts: the caller (method=oneself) and every member from sub-customers that shares its
bills (method=sub_customer + sub_customer_id) for bill_summary, consumption_records/focus
(identical requests), resource_bill_details and transaction_records; the simulator is
started with --denied-members N (default 1), so the LAST N members of sub-customers refuse:
  denied   - each request of those datasets for a refused member gets HTTP 403 CBC.0151.
resource_bill_details is queried with statistic_type 3 (the default, query_type BILLCYCLE)
for every account, and for the caller also with statistic_type 1 (BILLCYCLE) and 2 (DAILY,
bill_cycle_begin = bill_cycle_end = one local day) for the cycle's first and last day.
  day      - a DAILY query returns rows, all with bill_date = that day.
usage_95_summary: every (service, resource type, usage type) of usage_95.rs COMBINATIONS;
usage_95_details: the first resource of each combination that has one.
account_changes: BALANCE_TYPE_DEBIT and BALANCE_TYPE_CREDIT over the cycle's first..last day.

Usage (the SDK is not in the repo's toolchain; use a venv):
    python3 -m venv /tmp/sdkvenv && /tmp/sdkvenv/bin/pip install huaweicloudsdkbss
    HCBILL_BIN=target/debug/hcbill /tmp/sdkvenv/bin/python tests/sdk/conformance.py

Environment:
    HCBILL_BIN    simulator binary (default target/debug/hcbill; relative paths are tried
                  against the current directory, then the repository root)
    HCBILL_URL    test an already running simulator at this URL instead of starting one
    HCBILL_AK / HCBILL_SK   credentials (default AK / SK, as passed to the simulator)
    HCBILL_CYCLE  bill cycle to query (default 2026-09, inside the simulated 2026-08..2026-10)
    HCBILL_DENIED_MEMBERS   members refusing their bills (default 1, passed as
                  --denied-members; with HCBILL_URL it must match the running simulator)
    HCBILL_VERBOSE=1        print every HTTP call

Output: one line per check, then exactly `N passed, M failed`; exit status 1 if M > 0.
"""

import calendar
import decimal
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from urllib.parse import parse_qsl

# requests honours HTTP(S)_PROXY, which would also capture 127.0.0.1; never proxy the simulator.
for _var in ("NO_PROXY", "no_proxy"):
    os.environ[_var] = ",".join(filter(None, [os.environ.get(_var, ""), "127.0.0.1,localhost"]))

try:
    from huaweicloudsdkcore.auth.credentials import GlobalCredentials
    from huaweicloudsdkcore.exceptions import exceptions as sdk_exc
    from huaweicloudsdkcore.http.http_config import HttpConfig
    from huaweicloudsdkcore.http.http_handler import HttpHandler
    from huaweicloudsdkbss.v2 import BssClient
    from huaweicloudsdkbss.v2 import model as M
except ImportError as _e:  # pragma: no cover
    sys.stderr.write(
        "cannot import the Huawei Cloud SDK (%s).\n"
        "  python3 -m venv /tmp/sdkvenv && /tmp/sdkvenv/bin/pip install huaweicloudsdkbss\n"
        "  /tmp/sdkvenv/bin/python %s\n" % (_e, sys.argv[0]))
    sys.exit(2)

# The SDK warns when it coerces values (e.g. JSON "3" into an int field). The raw-body
# schema check below reports those cases precisely, so the warnings are only noise.
warnings.filterwarnings("ignore", module=r"huaweicloudsdkcore.*")
# The SDK logs every 429 ("RetryError occurred ...") at ERROR level on a handler-less logger,
# which Python would print to stderr; 429s are expected here and counted instead.
logging.getLogger("HuaweiCloud-SDK-BssClient").addHandler(logging.NullHandler())

# --------------------------------------------------------------------------------------------
# configuration

AK = os.environ.get("HCBILL_AK", "AK")
SK = os.environ.get("HCBILL_SK", "SK")
WRONG_SK = SK + "-wrong"
DOMAIN_ID = "0123456789abcdef0123456789abcdef"   # any value; sent as X-Domain-Id
CYCLE = os.environ.get("HCBILL_CYCLE", "2026-09")
VERBOSE = os.environ.get("HCBILL_VERBOSE") == "1"
DENIED_MEMBERS = int(os.environ.get("HCBILL_DENIED_MEMBERS", "1"))
REPO_ROOT = Path(__file__).resolve().parents[2]
SIM_ARGS = ["sim", "--port", "0", "--seed", "7", "--scale", "0.05",
            "--from", "2026-08", "--to", "2026-10", "--denied-members", str(DENIED_MEMBERS),
            "--ak", AK, "--sk", SK]
STARTUP_TIMEOUT_S = 60
MAX_PAGES = 5000              # safety net against a server whose total_count never ends the loop
MAX_429_RETRIES = 8
MAX_EXAMPLES = 6              # problems listed per failing check

_year, _month = (int(x) for x in CYCLE.split("-"))
CYCLE_FIRST_DAY = "%s-01" % CYCLE
CYCLE_LAST_DAY = "%s-%02d" % (CYCLE, calendar.monthrange(_year, _month)[1])
DAILY_BEGIN, DAILY_END = "%s-01" % CYCLE, "%s-15" % CYCLE

# src/source/datasets/usage_95.rs COMBINATIONS: (service_type_code, resource_type_code, usage types)
USAGE_95_COMBINATIONS = [
    ("hws.service.type.cdn", "hws.resource.type.cdn",
     ["95Peak", "95peak_1000", "95Peak_1000", "95peak_plus"]),
    ("hws.service.type.obs", "hws.resource.type.obs", ["95Peak"]),
    ("hws.service.type.vpc", "hws.resource.type.bandwidth", ["bandwidth95peak", "95peak_plus"]),
    ("hws.service.type.iec", "hws.resource.type.edgebandwidth", ["95Peak"]),
]
# statistic_type=2 is fetched one local day per query; these days are checked.
ST2_DAYS = [CYCLE_FIRST_DAY, CYCLE_LAST_DAY]

# Model keys that may legitimately never appear in a response to the queries made here.
# Everything else in a model's attribute_map must occur at least once (possibly as null).
# Reasons come from the SDK 3.1.219 docstrings ("预留" = reserved) and the fact sheet.
OPTIONAL_KEYS = {
    "ShowCustomerMonthlySumResponse": {
        "flexipurchase_coupon_amount": "reserved (现金券金额，预留)",
        "stored_value_card_amount": "reserved (储值卡金额，预留)",
    },
    "BillSumRecordInfoV2": {
        "flexipurchase_coupon_amount": "reserved (现金券金额，预留)",
        "stored_value_card_amount": "reserved (储值卡金额，预留)",
    },
    "MonthlyBillRes": {
        "id": "reserved (该字段为预留字段)",
        "bill_date": "only set for statistic_type=2; this script queries statistic_type=3",
        "extend_params": "reserved per fact sheet section 3",
    },
    "ResRelation": {"self_resource_id": "inside reserved extend_params",
                    "relation_infos": "inside reserved extend_params"},
    "RelationInfo": {"relative_resource_id": "inside reserved extend_params",
                     "relative_type": "inside reserved extend_params"},
    "MonthlyBillRecord": {"id": "reserved (该字段为预留字段)"},
    "CustomerAccountChangeRecord": {"resource_type_name": "reserved (该字段为预留字段)"},
    "StatUsageSummaryInfo": {
        "monthly_guaranteed_band_width": "reserved, always empty except enhanced-95",
        "monthly_peak_band_width": "reserved, always empty except enhanced-95",
    },
    "ListResourceUsageResponse": {
        "monthly_guaranteed_band_width": "reserved, always empty except enhanced-95",
        "monthly_peak_band_width": "reserved, always empty except enhanced-95",
    },
    "StatUsageInfo": {"guaranteed_band_width": "reserved, always empty except enhanced-95"},
}

# --------------------------------------------------------------------------------------------
# reporting


class Report:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, ok, op, name, summary, details=()):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        print("%s  %-38s %-9s %s" % ("PASS" if ok else "FAIL", op, name, summary), flush=True)
        details = list(details)
        for line in details[:MAX_EXAMPLES]:
            print("        - %s" % line, flush=True)
        if len(details) > MAX_EXAMPLES:
            print("        - ... and %d more" % (len(details) - MAX_EXAMPLES), flush=True)

    def info(self, text):
        print("INFO  %s" % text, flush=True)


# --------------------------------------------------------------------------------------------
# simulator process


class Simulator:
    """Starts `hcbill sim`, extracts the listen URL from stdout, stops it on exit."""

    def __init__(self, binary):
        self.binary = binary
        self.proc = None
        self.log = tempfile.NamedTemporaryFile(prefix="hcbill-sim-", suffix=".log", delete=False)
        self.url = None

    def start(self):
        self.proc = subprocess.Popen([str(self.binary)] + SIM_ARGS, stdout=subprocess.PIPE,
                                     stderr=self.log, stdin=subprocess.DEVNULL)
        found = threading.Event()

        def pump():   # read stdout forever so the simulator never blocks on a full pipe
            for raw in iter(self.proc.stdout.readline, b""):
                line = raw.decode("utf-8", "replace")
                self.log.write(b"[stdout] " + raw)
                self.log.flush()
                if self.url is None:
                    m = re.search(r"https?://[^\s'\"<>]+", line)
                    if m:
                        self.url = m.group(0).rstrip(".,;)")
                        found.set()
            found.set()

        threading.Thread(target=pump, daemon=True).start()
        found.wait(STARTUP_TIMEOUT_S)
        if self.url is None:
            try:
                code = self.proc.wait(2)
            except subprocess.TimeoutExpired:
                code = None
            if code is not None:
                raise RuntimeError("simulator exited with code %s before printing its URL" % code)
            raise RuntimeError("simulator printed no http:// URL within %ds" % STARTUP_TIMEOUT_S)
        wait_for_port(self.url, 10)
        return self.url

    def log_tail(self, n=15):
        try:
            with open(self.log.name, "rb") as f:
                return f.read().decode("utf-8", "replace").splitlines()[-n:]
        except OSError:
            return []

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


def wait_for_port(url, timeout_s):
    m = re.match(r"https?://([^/:]+)(?::(\d+))?", url)
    host, port = m.group(1), int(m.group(2) or 80)
    deadline = time.time() + timeout_s
    while True:
        try:
            socket.create_connection((host, port), 1).close()
            return
        except OSError:
            if time.time() > deadline:
                raise RuntimeError("nothing listens on %s:%d" % (host, port))
            time.sleep(0.1)


def find_binary():
    configured = Path(os.environ.get("HCBILL_BIN", "target/debug/hcbill"))
    if configured.is_absolute() or configured.exists():
        return configured
    if (REPO_ROOT / configured).exists():
        return REPO_ROOT / configured
    return configured


# --------------------------------------------------------------------------------------------
# SDK access with pacing and 429 handling


class WireRecorder:
    """Request hook: keeps the last request the SDK signed and sent."""

    def __init__(self):
        self.last = None        # (HTTP method, [(key, value)] of the query string, body text)

    def __call__(self, **kwargs):
        request = kwargs.get("request")
        uri = request.uri or request.resource_path or ""
        query = uri.split("?", 1)[1] if "?" in uri else ""
        body = request.body
        if isinstance(body, bytes):
            body = body.decode("utf-8", "replace")
        self.last = (request.method, parse_qsl(query, keep_blank_values=True), body)


def make_client(url, ak, sk, recorder=None):
    cfg = HttpConfig.get_default_config()
    cfg.ignore_ssl_verification = True   # irrelevant for http://, harmless
    cfg.timeout = (5, 60)
    cfg.retry_times = 0                  # we retry 429 ourselves (the SDK would not retry POST)
    builder = (BssClient.new_builder()
               .with_credentials(GlobalCredentials(ak, sk, DOMAIN_ID))
               .with_http_config(cfg)
               .with_endpoint(url))      # no with_region(): it would add the real endpoint
    if recorder is not None:
        builder = builder.with_http_handler(HttpHandler().add_request_handler(recorder))
    return builder.build()


class Caller:
    """Calls one SDK method, pacing calls per API and retrying HTTP 429."""

    def __init__(self):
        self.last_call = {}
        self.throttled = 0
        self.calls = 0

    def call(self, client, op, request):
        interval = 1.2 / op.rate     # 20% below the simulator's per-API quota
        for attempt in range(MAX_429_RETRIES + 1):
            wait = self.last_call.get(op.path, 0) + interval - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self.last_call[op.path] = time.monotonic()
            self.calls += 1
            try:
                resp = getattr(client, op.sdk_method)(request)
                if VERBOSE:
                    print("        %s %s -> %s (%d bytes)" % (op.http, op.path, resp.status_code,
                                                              len(resp.raw_content or b"")))
                return resp
            except sdk_exc.ClientRequestException as e:
                if VERBOSE:
                    print("        %s %s -> %s %s" % (op.http, op.path, e.status_code, e.error_code))
                if e.status_code != 429 or attempt == MAX_429_RETRIES:
                    raise
                self.throttled += 1
                time.sleep(min(5.0, 0.25 * 2 ** attempt))


def describe_exc(e):
    if isinstance(e, sdk_exc.ServiceResponseException):
        return "HTTP %s error_code=%s error_msg=%s" % (e.status_code, e.error_code,
                                                       shorten(e.error_msg, 160))
    return "%s: %s" % (type(e).__name__, shorten(str(e), 200))


def shorten(text, n):
    text = str(text)
    return text if len(text) <= n else text[:n] + "..."


# --------------------------------------------------------------------------------------------
# raw-body schema checks


def json_type(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, (float, decimal.Decimal)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


def key_types(model_cls):
    """JSON key -> SDK type string, e.g. {'resource_Type_code': 'str', 'bill_sums': 'list[...]'}"""
    return {model_cls.attribute_map.get(attr, attr): typ for attr, typ in model_cls.openapi_types.items()}


class SchemaChecker:
    """Walks raw JSON against SDK models. Collects problems (grouped) and the keys seen per model."""

    def __init__(self):
        self.problems = {}      # signature -> [count, example]
        self.seen = {}          # model name -> set of JSON keys seen
        self.instances = {}     # model name -> number of objects checked

    def problem(self, signature, example):
        entry = self.problems.setdefault(signature, [0, example])
        entry[0] += 1

    def check_object(self, obj, model_cls, path):
        name = model_cls.__name__
        if not isinstance(obj, dict):
            self.problem("%s: expected object, got %s" % (name, json_type(obj)), path)
            return
        types = key_types(model_cls)
        self.instances[name] = self.instances.get(name, 0) + 1
        seen = self.seen.setdefault(name, set())
        for key, value in obj.items():
            if key not in types:
                self.problem("%s: unknown key %r (not in the SDK attribute_map)" % (name, key),
                             "%s.%s = %s" % (path, key, shorten(repr(value), 60)))
                continue
            seen.add(key)
            self.check_value(value, types[key], "%s.%s" % (path, key), name, key)

    def check_value(self, value, typ, path, model_name, key):
        if value is None:
            return                                   # every field is nullable
        list_m = re.match(r"list\[(.*)\]$", typ)
        dict_m = re.match(r"dict\(([^,]*), (.*)\)$", typ)
        if list_m:
            if not isinstance(value, list):
                self.type_problem(model_name, key, typ, value, path)
                return
            for i, item in enumerate(value):
                self.check_value(item, list_m.group(1), "%s[%d]" % (path, i), model_name, key)
        elif dict_m:
            if not isinstance(value, dict):
                self.type_problem(model_name, key, typ, value, path)
                return
            for k, item in value.items():
                self.check_value(item, dict_m.group(2), "%s.%s" % (path, k), model_name, key)
        elif hasattr(M, typ) and hasattr(getattr(M, typ), "openapi_types"):
            self.check_object(value, getattr(M, typ), path)
        elif not scalar_fits(value, typ):
            self.type_problem(model_name, key, typ, value, path)

    def type_problem(self, model_name, key, typ, value, path):
        self.problem("%s.%s: SDK type %s, JSON %s" % (model_name, key, typ, json_type(value)),
                     "%s = %s" % (path, shorten(repr(value), 60)))

    def problem_lines(self):
        return ["%s  (%d x, e.g. %s)" % (sig, n, ex) for sig, (n, ex) in sorted(self.problems.items())]


def scalar_fits(value, typ):
    if typ == "str":
        return isinstance(value, str)
    if typ == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if typ == "bool":
        return isinstance(value, bool)
    if typ == "float":
        return isinstance(value, (int, decimal.Decimal)) and not isinstance(value, bool)
    if typ == "decimal.Decimal":
        if isinstance(value, bool):
            return False
        if isinstance(value, (int, decimal.Decimal)):
            return True
        if isinstance(value, str):
            try:
                return decimal.Decimal(value.strip()).is_finite() and value.strip() != ""
            except decimal.InvalidOperation:
                return False
        return False
    if typ == "object":
        return True
    return False     # a type this script does not know: flag it so it gets looked at


# --------------------------------------------------------------------------------------------
# operations


class Op:
    """One BSS list operation as seen through the SDK."""

    def __init__(self, label, sdk_method, http, path, rate, limit, response_cls, list_key, make,
                 invalid=None, scope=None, expected=None, allow_empty=None, required=None):
        self.label = label                  # e.g. "#1 monthly-sum"
        self.sdk_method = sdk_method        # BssClient method name
        self.http, self.path = http, path   # for pacing and messages
        self.rate = rate                    # simulator quota, requests/s per API
        self.limit = limit                  # page size used for paging
        self.response_cls = response_cls
        self.list_key = list_key            # JSON key of the row list in the response
        self.make = make                    # make(offset, limit) -> SDK request
        self.invalid = invalid              # (description, request) expected to give 400 CBC.0100
        self.scope = scope                  # None | "oneself" | member id (method=sub_customer)
        self.expected = expected            # extractor ops: [(name, str|int|bool)] without offset/limit
        self.allow_empty = allow_empty      # reason why no rows is a legitimate answer, or None
        self.required = required or {}      # model name -> OPTIONAL_KEYS entries required here

    @property
    def list_attr(self):
        inverse = {v: k for k, v in self.response_cls.attribute_map.items()}
        return inverse.get(self.list_key, self.list_key)

    @property
    def row_cls(self):
        typ = key_types(self.response_cls)[self.list_key]
        return getattr(M, re.match(r"list\[(.*)\]$", typ).group(1))


PATH_SUM = "/v2/bills/customer-bills/monthly-sum"
PATH_RES_QUERY = "/v2/bills/customer-bills/res-records/query"
PATH_RES_FEE = "/v2/bills/customer-bills/res-fee-records"
PATH_USAGE_SUM = "/v2/bills/customer-bills/resources/usage/summary"
PATH_USAGE_DET = "/v2/bills/customer-bills/resources/usage/details"
PATH_FEE = "/v2/bills/customer-bills/fee-records"
PATH_ACCOUNT = "/v2/accounts/customer-accounts/account-change-records"
PATH_SUBS = "/v2/enterprises/multi-accounts/sub-customers"
PATH_BREAKDOWN = "/v2/costs/cost-analysed-bills/monthly-breakdown"

USAGE = dict(service_type_code="hws.service.type.cdn", resource_type_code="hws.resource.type.cdn",
             usage_type="95Peak")


def op_sub_customers():
    def make(offset, limit):
        return M.ListEnterpriseSubCustomersRequest(offset=offset, limit=limit)
    return Op("#7 sub-customers", "list_enterprise_sub_customers", "GET", PATH_SUBS, 10, 100,
              M.ListEnterpriseSubCustomersResponse, "sub_customer_infos", make,
              invalid=("limit=101 (max 100)", make(0, 101)))


def op_monthly_sum():
    def make(offset, limit):
        return M.ShowCustomerMonthlySumRequest(bill_cycle=CYCLE, method="oneself",
                                               offset=offset, limit=limit)
    return Op("#1 monthly-sum", "show_customer_monthly_sum", "GET", PATH_SUM, 10, 1000,
              M.ShowCustomerMonthlySumResponse, "bill_sums", make,
              invalid=("limit=5000 (max 1000)", make(0, 5000)), scope="oneself")


def op_res_records(daily=False):
    def make(offset, limit):
        body = M.QueryResRecordsDetailReq(cycle=CYCLE, statistic_type=3, method="oneself",
                                          offset=offset, limit=limit)
        if daily:
            body.query_type = "DAILY"
            body.bill_cycle_begin, body.bill_cycle_end = DAILY_BEGIN, DAILY_END
        return M.ListCustomerselfResourceRecordDetailsRequest(body=body)
    label = "#2 res-records DAILY" if daily else "#2 res-records/query"
    return Op(label, "list_customerself_resource_record_details", "POST", PATH_RES_QUERY, 30, 1000,
              M.ListCustomerselfResourceRecordDetailsResponse, "monthly_records", make,
              invalid=None if daily else ("limit=5000 (max 1000)", make(0, 5000)), scope="oneself")


def op_res_fee_records(member=None):
    def make(offset, limit):
        req = M.ListCustomerselfResourceRecordsRequest(cycle=CYCLE, statistic_type=3,
                                                       include_zero_record=True, offset=offset,
                                                       limit=limit)
        if member:
            req.method, req.sub_customer_id = "sub_customer", member
        else:
            req.method = "oneself"
        return req
    label = "#3 res-fee-records member" if member else "#3 res-fee-records"
    return Op(label, "list_customerself_resource_records", "GET", PATH_RES_FEE, 30, 1000,
              M.ListCustomerselfResourceRecordsResponse, "fee_records", make,
              invalid=None if member else ("limit=5000 (max 1000)", make(0, 5000)),
              scope=member or "oneself")


def op_usage_summary():
    def make(offset, limit):
        return M.ListResourceUsageSummaryRequest(bill_cycle=CYCLE, offset=offset, limit=limit, **USAGE)
    return Op("#4a usage/summary", "list_resource_usage_summary", "GET", PATH_USAGE_SUM, 10, 1000,
              M.ListResourceUsageSummaryResponse, "summary_usage_info_list", make,
              invalid=("limit=5000 (max 1000)", make(0, 5000)))


def op_usage_details(resource_id):
    def make(offset, limit):
        return M.ListResourceUsageRequest(bill_cycle=CYCLE, resource_id=resource_id, offset=offset,
                                          limit=limit, **USAGE)
    return Op("#4b usage/details", "list_resource_usage", "GET", PATH_USAGE_DET, 10, 1000,
              M.ListResourceUsageResponse, "usage_info_list", make,
              invalid=("limit=5000 (max 1000)", make(0, 5000)))


def op_fee_records():
    def make(offset, limit):
        return M.ListCustomerBillsFeeRecordsRequest(bill_cycle=CYCLE, include_zero_record=True,
                                                    method="oneself", offset=offset, limit=limit)
    return Op("#5 fee-records", "list_customer_bills_fee_records", "GET", PATH_FEE, 10, 1000,
              M.ListCustomerBillsFeeRecordsResponse, "records", make,
              invalid=("limit=5000 (max 1000)", make(0, 5000)), scope="oneself")


def op_monthly_breakdown():
    def make(offset, limit):
        return M.ListCustomerBillsMonthlyBreakDownRequest(shared_month=CYCLE, method="oneself",
                                                          offset=offset, limit=limit)
    return Op("#8a monthly-breakdown", "list_customer_bills_monthly_break_down", "GET", PATH_BREAKDOWN,
              10, 1000, M.ListCustomerBillsMonthlyBreakDownResponse, "details", make,
              invalid=("limit=5000 (max 1000)", make(0, 5000)), scope="oneself")


def op_account_changes():
    def make(offset, limit):
        return M.ListCustomerAccountChangeRecordsRequest(
            balance_type="BALANCE_TYPE_DEBIT", trade_time_begin=CYCLE_FIRST_DAY,
            trade_time_end=CYCLE_LAST_DAY, offset=offset, limit=limit)
    return Op("#6 account-change-records", "list_customer_account_change_records", "GET",
              PATH_ACCOUNT, 10, 100, M.ListCustomerAccountChangeRecordsResponse, "records", make,
              invalid=("limit=101 (max 100)", make(0, 101)))


# --------------------------------------------------------------------------------------------
# the extractors' requests (src/source/datasets/*.rs, src/pipeline/mod.rs, src/source/paging.rs)
#
# `params` are the extractor's parameters in order, typed as the Rust Param (Str -> str,
# Int -> int, Bool -> bool); paging appends offset and limit (Param::Int). GET operations put
# them into the SDK request's attributes of the same name, POST res-records/query into its
# QueryResRecordsDetailReq body; the "request" check compares what went on the wire.


def account_params(member):
    """AccountRef::params(): method=oneself, or method=sub_customer + sub_customer_id."""
    if member is None:
        return [("method", "oneself")]
    return [("method", "sub_customer"), ("sub_customer_id", member)]


def x_op(label, api, params, scope=None, allow_empty=None, required=None):
    """An Op that sends exactly `params` (+ offset, limit) through the SDK."""
    sdk_method, http, path, rate, limit, request_cls, response_cls, list_key = X_APIS[api]

    def make(offset, limit):
        fields = dict(params, offset=offset, limit=limit)
        if http == "POST":
            return request_cls(body=M.QueryResRecordsDetailReq(**fields))
        return request_cls(**fields)
    return Op(label, sdk_method, http, path, rate, limit, response_cls, list_key, make,
              scope=scope, expected=list(params), allow_empty=allow_empty, required=required)


# Api -> (SDK method, HTTP, path, quota/s, Api::max_limit(), SDK request, SDK response, list key)
X_APIS = {
    "MonthlySum": ("show_customer_monthly_sum", "GET", PATH_SUM, 10, 1000,
                   M.ShowCustomerMonthlySumRequest, M.ShowCustomerMonthlySumResponse, "bill_sums"),
    "ResRecords": ("list_customerself_resource_record_details", "POST", PATH_RES_QUERY, 30, 1000,
                   M.ListCustomerselfResourceRecordDetailsRequest,
                   M.ListCustomerselfResourceRecordDetailsResponse, "monthly_records"),
    "ResFeeRecords": ("list_customerself_resource_records", "GET", PATH_RES_FEE, 30, 1000,
                      M.ListCustomerselfResourceRecordsRequest,
                      M.ListCustomerselfResourceRecordsResponse, "fee_records"),
    "UsageSummary": ("list_resource_usage_summary", "GET", PATH_USAGE_SUM, 10, 1000,
                     M.ListResourceUsageSummaryRequest, M.ListResourceUsageSummaryResponse,
                     "summary_usage_info_list"),
    "UsageDetails": ("list_resource_usage", "GET", PATH_USAGE_DET, 10, 1000,
                     M.ListResourceUsageRequest, M.ListResourceUsageResponse, "usage_info_list"),
    "FeeRecords": ("list_customer_bills_fee_records", "GET", PATH_FEE, 10, 1000,
                   M.ListCustomerBillsFeeRecordsRequest, M.ListCustomerBillsFeeRecordsResponse,
                   "records"),
    "AccountChanges": ("list_customer_account_change_records", "GET", PATH_ACCOUNT, 10, 100,
                       M.ListCustomerAccountChangeRecordsRequest,
                       M.ListCustomerAccountChangeRecordsResponse, "records"),
    "SubCustomers": ("list_enterprise_sub_customers", "GET", PATH_SUBS, 10, 100,
                     M.ListEnterpriseSubCustomersRequest, M.ListEnterpriseSubCustomersResponse,
                     "sub_customer_infos"),
    "MonthlyBreakdown": ("list_customer_bills_monthly_break_down", "GET", PATH_BREAKDOWN, 10, 1000,
                         M.ListCustomerBillsMonthlyBreakDownRequest,
                         M.ListCustomerBillsMonthlyBreakDownResponse, "details"),
}


def res_records_params(statistic_type, day=None):
    """resource_bill_details queries(): BILLCYCLE unless statistic_type 2 (DAILY, one day)."""
    params = [("cycle", CYCLE), ("statistic_type", statistic_type),
              ("query_type", "DAILY" if statistic_type == 2 else "BILLCYCLE"),
              ("include_zero_record", True)]
    if statistic_type == 2:
        params += [("bill_cycle_begin", day), ("bill_cycle_end", day)]
    return params


def x_member_ops(account, member):
    """The member-scoped datasets' requests for the caller (member None) or one member."""
    acc = account_params(member)
    scope = member or "oneself"
    return [
        x_op("x bill_summary %s" % account, "MonthlySum", [("bill_cycle", CYCLE)] + acc, scope),
        x_op("x consumption+focus %s" % account, "ResFeeRecords",
             [("cycle", CYCLE), ("statistic_type", 3), ("include_zero_record", True)] + acc, scope),
        x_op("x resource_bill_details %s" % account, "ResRecords", res_records_params(3) + acc, scope),
        x_op("x transaction_records %s" % account, "FeeRecords",
             [("bill_cycle", CYCLE), ("include_zero_record", True)] + acc, scope),
        x_op("x amortized_costs+focus %s" % account, "MonthlyBreakdown",
             [("shared_month", CYCLE)] + acc, scope),
    ]


def usage_params(service, rtype, usage):
    return [("bill_cycle", CYCLE), ("service_type_code", service), ("resource_type_code", rtype),
            ("usage_type", usage)]


def usage_label(kind, service, usage):
    return "x usage_95_%s %s/%s" % (kind, service.rsplit(".", 1)[-1], usage)


def query_value(v):
    """Param::as_query_value(): booleans lower-case, integers in decimal."""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def sdk_type_of(v):
    return "bool" if isinstance(v, bool) else "int" if isinstance(v, int) else "str"


# --------------------------------------------------------------------------------------------
# the checks


class Conformance:
    def __init__(self, url, report):
        self.report = report
        self.recorder = WireRecorder()
        self.client = make_client(url, AK, SK, self.recorder)
        self.bad_client = make_client(url, AK, WRONG_SK)
        self.caller = Caller()
        self.member_ids = None          # from #7, None if #7 failed
        self.members = None             # the same ids in the order #7 lists them
        self.results = {}               # label -> list of raw rows (None if the call failed)

    # --- checks 1, 2 and 3 ------------------------------------------------------------------

    def run_listing(self, op):
        """Pages through op; reports checks 1-3. Returns the raw rows, or None if the call failed."""
        rep = self.report
        pages = []          # (offset, sdk rows, raw rows, total_count)
        page_errors = []
        schema = SchemaChecker()
        raw_rows = []
        offset = 0
        wire = []           # extractor ops: differences between the sent and the expected request
        requests = 0
        while True:
            self.recorder.last = None
            try:
                resp, exc = self.caller.call(self.client, op, op.make(offset, op.limit)), None
            except Exception as e:   # SDK errors, but also e.g. an undecodable body
                resp, exc = None, e
            if op.expected is not None:
                requests += 1
                wire.extend(self.wire_problems(op, offset))
            if exc is not None:
                e = exc
                if not pages:
                    rep.check(False, op.label, "call", "%s %s failed: %s" % (op.http, op.path, describe_exc(e)))
                    if op.expected is not None:
                        self.check_request(op, wire, requests)
                    for name in ("paging", "distinct", "schema", "coverage"):
                        rep.check(False, op.label, name, "not run: the call failed")
                    self.results[op.label] = None
                    return None
                page_errors.append("offset=%d: %s" % (offset, describe_exc(e)))
                break
            if not pages:
                rep.check(True, op.label, "call", "%s %s -> HTTP %s" % (op.http, op.path, resp.status_code))
            try:
                body = json.loads(resp.raw_content or b"null", parse_float=decimal.Decimal)
            except ValueError as e:
                page_errors.append("offset=%d: raw body is not JSON (%s)" % (offset, e))
                break
            schema.check_object(body, op.response_cls, "$[offset=%d]" % offset)
            page_raw = body.get(op.list_key) if isinstance(body, dict) else None
            page_raw = page_raw if isinstance(page_raw, list) else []
            raw_rows.extend(page_raw)
            sdk_rows = getattr(resp, op.list_attr) or []
            total = resp.total_count
            pages.append((offset, len(sdk_rows), len(page_raw), total))
            if not isinstance(total, int) or isinstance(total, bool):
                page_errors.append("offset=%d: total_count is %r" % (offset, total))
                break
            offset += op.limit
            if offset >= total:
                break
            if not sdk_rows:
                page_errors.append("offset=%d: empty page although total_count=%d" % (offset - op.limit, total))
                break
            if len(pages) >= MAX_PAGES:
                page_errors.append("stopped after %d pages" % MAX_PAGES)
                break

        if op.expected is not None:
            self.check_request(op, wire, requests)
        self.check_paging(op, pages, page_errors)
        self.check_distinct(op, raw_rows)
        self.check_schema(op, schema, raw_rows)
        self.results[op.label] = raw_rows
        return raw_rows

    def check_paging(self, op, pages, errors):
        errors = list(errors)
        totals = {p[3] for p in pages}
        total = pages[0][3]
        if len(totals) > 1:
            errors.append("total_count changed between pages: %s" % sorted(map(str, totals)))
        parsed = sum(p[1] for p in pages)
        for offset, n_sdk, n_raw, page_total in pages:
            if n_sdk != n_raw:
                errors.append("offset=%d: SDK parsed %d rows, raw body has %d" % (offset, n_sdk, n_raw))
            if isinstance(page_total, int):
                expected = max(0, min(op.limit, page_total - offset))
                if n_sdk != expected:
                    errors.append("offset=%d: %d rows, expected %d (limit=%d, total_count=%d)"
                                  % (offset, n_sdk, expected, op.limit, page_total))
        if parsed != total:
            errors.append("rows parsed %d != total_count %s" % (parsed, total))
        self.report.check(not errors, op.label, "paging",
                          "%d rows in %d page(s) of limit=%d, total_count=%s"
                          % (parsed, len(pages), op.limit, total), errors)

    def check_distinct(self, op, rows):
        seen, dups = set(), []
        for i, row in enumerate(rows):
            canon = json.dumps(row, sort_keys=True, default=str)
            if canon in seen:
                dups.append("row #%d repeats an earlier row: %s" % (i, shorten(canon, 120)))
            seen.add(canon)
        self.report.check(not dups, op.label, "distinct",
                          "%d rows, %d duplicate(s) across pages" % (len(rows), len(dups)), dups)

    def check_schema(self, op, schema, rows):
        rep = self.report
        problems = schema.problem_lines()
        rep.check(not problems, op.label, "schema",
                  "raw JSON keys/types vs %s + %s (%d rows)"
                  % (op.response_cls.__name__, op.row_cls.__name__, len(rows)), problems)

        missing = []
        checked = []
        for name, count in sorted(schema.instances.items()):
            keys = set(key_types(getattr(M, name)))
            optional = {k: why for k, why in OPTIONAL_KEYS.get(name, {}).items()
                        if k not in op.required.get(name, ())}
            absent = sorted(keys - schema.seen.get(name, set()) - set(optional))
            checked.append("%s(%d)" % (name, count))
            missing += ["%s.%s never present" % (name, k) for k in absent]
        note = ""
        if not rows and op.allow_empty:
            note = " (no %s rows: %s)" % (op.row_cls.__name__, op.allow_empty)
        elif not rows:
            missing.insert(0, "no %s rows returned: key coverage cannot be checked" % op.row_cls.__name__)
        rep.check(not missing, op.label, "coverage",
                  "every model key present at least once in %s%s" % (", ".join(checked), note), missing)

    # --- the extractors' requests -----------------------------------------------------------

    def wire_problems(self, op, offset):
        """What the SDK sent for one page vs. the extractor's parameters + offset/limit."""
        want = op.expected + [("offset", offset), ("limit", op.limit)]
        at = "offset=%d: " % offset
        if self.recorder.last is None:
            return [at + "the SDK sent no request"]
        method, query, body = self.recorder.last
        problems = [] if method == op.http else [at + "HTTP %s, the extractor sends %s" % (method, op.http)]
        if op.http == "GET":
            got = sorted(query)
            exp = sorted((k, query_value(v)) for k, v in want)
            problems += [at + "query lacks %s=%s" % kv for kv in exp if got.count(kv) < exp.count(kv)]
            problems += [at + "query has extra %s=%s" % kv for kv in got if exp.count(kv) < got.count(kv)]
            return sorted(set(problems), key=problems.index)
        if query:
            problems.append(at + "POST with a query string: %s" % query)
        try:
            doc = json.loads(body or "null")
        except ValueError as e:
            return problems + [at + "body is not JSON (%s): %s" % (e, shorten(body, 80))]
        if not isinstance(doc, dict):
            return problems + [at + "body is %s, not an object" % json_type(doc)]
        exp = dict(want)
        for k in exp:
            if k not in doc:
                problems.append(at + "body lacks %s" % k)
            elif (json_type(doc[k]), doc[k]) != (json_type(exp[k]), exp[k]):
                problems.append(at + "body %s = %s (%s), the extractor sends %s (%s)"
                                % (k, json.dumps(doc[k]), json_type(doc[k]), json.dumps(exp[k]),
                                   json_type(exp[k])))
        problems += [at + "body has extra %s = %s" % (k, json.dumps(doc[k])) for k in doc if k not in exp]
        return problems

    def check_request(self, op, wire, requests):
        """Reports "request": SDK model types of the extractor's parameters + the wire check."""
        sample = op.make(0, op.limit)
        model = sample.body if op.http == "POST" else sample
        types = {model.attribute_map[a]: t for a, t in model.openapi_types.items()}
        problems = []
        for k, v in op.expected + [("offset", 0), ("limit", op.limit)]:
            if k not in types:
                problems.append("%s has no parameter %s" % (type(model).__name__, k))
            elif types[k] != sdk_type_of(v):
                problems.append("%s.%s is %s in the SDK, the extractor sends %s"
                                % (type(model).__name__, k, types[k], sdk_type_of(v)))
        problems += wire
        shown = ", ".join("%s=%s" % (k, json.dumps(v)) for k, v in op.expected)
        self.report.check(not problems, op.label, "request",
                          "%d page request(s) sent exactly {%s} + offset, limit=%d"
                          % (requests, shorten(shown, 150), op.limit), problems)

    # --- checks 4 and 5 ---------------------------------------------------------------------

    def check_wrong_sk(self, op):
        try:
            resp = self.caller.call(self.bad_client, op, op.make(0, 10))
            self.report.check(False, op.label, "auth", "wrong SK accepted: HTTP %s" % resp.status_code)
        except Exception as e:   # SDK errors, but also e.g. an undecodable body
            ok = (isinstance(e, sdk_exc.ClientRequestException) and e.status_code == 401
                  and e.error_code in ("APIGW.0301", "APIG.0301"))
            self.report.check(ok, op.label, "auth", "wrong SK -> %s (want 401 APIGW.0301)" % describe_exc(e))

    def check_invalid(self, op):
        description, request = op.invalid
        try:
            resp = self.caller.call(self.client, op, request)
            self.report.check(False, op.label, "invalid", "%s accepted: HTTP %s" % (description, resp.status_code))
        except Exception as e:   # SDK errors, but also e.g. an undecodable body
            ok = (isinstance(e, sdk_exc.ClientRequestException) and e.status_code == 400
                  and e.error_code == "CBC.0100")
            self.report.check(ok, op.label, "invalid", "%s -> %s (want 400 CBC.0100)" % (description, describe_exc(e)))

    # --- semantic extras --------------------------------------------------------------------

    def check_scope(self, op, rows):
        """method=oneself: one customer_id, never a member; method=sub_customer: only that member."""
        if rows is None or op.scope is None:
            return
        ids = {r.get("customer_id") for r in rows if isinstance(r, dict)}
        if op.scope == "oneself":
            if self.member_ids is None:
                self.report.check(False, op.label, "scope", "not run: member list (#7) unavailable")
                return
            leaked = sorted(str(i) for i in ids & self.member_ids)
            errors = (["rows of member account(s): %s" % ", ".join(leaked)] if leaked else []) + \
                     (["several customer_ids: %s" % sorted(map(str, ids))] if len(ids) > 1 else [])
            self.report.check(not errors, op.label, "scope",
                              "method=oneself rows carry customer_id %s" % sorted(map(str, ids)), errors)
        else:
            errors = ["customer_id %r != sub_customer_id %r" % (i, op.scope) for i in sorted(map(str, ids)) if i != op.scope]
            self.report.check(not errors, op.label, "scope",
                              "method=sub_customer rows all belong to %s" % op.scope, errors)

    def check_daily_subset(self):
        full = self.results.get("#2 res-records/query")
        daily = self.results.get("#2 res-records DAILY")
        if full is None or daily is None:
            self.report.check(False, "#2 res-records DAILY", "subset", "not run: a res-records query failed")
            return
        self.report.check(0 < len(daily) <= len(full), "#2 res-records DAILY", "subset",
                          "DAILY %s..%s gives %d rows (want 1..%d = BILLCYCLE %s rows)"
                          % (DAILY_BEGIN, DAILY_END, len(daily), len(full), CYCLE))

    # --- driver -----------------------------------------------------------------------------

    def run(self):
        rep = self.report
        # #7 first: its member ids feed the scope checks and the sub_customer query.
        ops = [op_sub_customers()]
        members = self.run_listing(ops[0])
        if members is not None:
            self.member_ids = {m.get("id") for m in members if isinstance(m, dict)}
            self.members = [m.get("id") for m in members if isinstance(m, dict)]
            rep.check(bool(self.member_ids), ops[0].label, "members",
                      "%d member account(s) listed" % len(self.member_ids))

        for op in (op_monthly_sum(), op_res_records(), op_res_records(daily=True), op_res_fee_records()):
            ops.append(op)
            self.check_scope(op, self.run_listing(op))
            if op.label == "#2 res-records DAILY":
                self.check_daily_subset()

        summary = op_usage_summary()
        ops.append(summary)
        usage_rows = self.run_listing(summary)
        resource_id = None
        if usage_rows:
            resource_id = usage_rows[0].get("resource_id")
        details = op_usage_details(resource_id or "conformance-no-resource")
        ops.append(details)
        if resource_id:
            rep.info("usage details for resource_id %s" % resource_id)
            self.run_listing(details)
        else:
            rep.check(False, details.label, "call", "not run: usage/summary returned no resource_id")

        for op in (op_fee_records(), op_account_changes(), op_monthly_breakdown()):
            ops.append(op)
            self.check_scope(op, self.run_listing(op))

        self.run_member()
        self.run_extractors()

        # Negative checks last, alternating bad and good requests so that an AK lock-out after
        # consecutive signature failures (5 in a row on the real API) can never trigger.
        for op in ops:
            if op.invalid is None:
                continue
            self.check_wrong_sk(op)
            self.check_invalid(op)

        if self.caller.throttled:
            rep.info("%d HTTP 429 answers were retried (pacing at 1.2/quota s)" % self.caller.throttled)
        rep.info("%d HTTP calls made" % self.caller.calls)

    def run_member(self):
        rep = self.report
        label = "#3 res-fee-records member"
        if not self.member_ids:
            rep.check(False, label, "call", "not run: no member ids from #7")
            return
        chosen = None
        for member in sorted(str(m) for m in self.split_members()[0] if m)[:5]:
            probe = op_res_fee_records(member)
            try:
                resp = self.caller.call(self.client, probe, probe.make(0, 1))
            except Exception as e:   # SDK errors, but also e.g. an undecodable body
                rep.check(False, label, "call", "member %s: %s" % (member, describe_exc(e)))
                return
            if (resp.total_count or 0) > 0:
                chosen = member
                break
        if chosen is None:
            rep.check(False, label, "call", "none of the first 5 members has res-fee-records in %s" % CYCLE)
            return
        rep.info("member res-fee-records for sub_customer_id %s" % chosen)
        op = op_res_fee_records(chosen)
        self.check_scope(op, self.run_listing(op))


    def split_members(self):
        """(members sharing their bills, the last DENIED_MEMBERS members, which refuse)."""
        members = list(self.members or [])
        cut = max(0, len(members) - DENIED_MEMBERS)
        return members[:cut], members[cut:]

    def run_extractors(self):
        rep = self.report
        self.run_listing(x_op("x sub_customers", "SubCustomers", []))

        allowed, denied = self.split_members()
        names = {m: "m%d" % i for i, m in enumerate(self.members or [], 1)}
        for m in self.members or []:
            rep.info("%s = sub_customer_id %s%s" % (names[m], m, " (refuses its bills)" if m in denied else ""))
        rep.check(self.members is not None and bool(allowed) and len(denied) == DENIED_MEMBERS,
                  "x members", "split",
                  "%s member(s): %d share their bills, the last %d refuse (--denied-members %d)"
                  % ("no" if self.members is None else len(self.members), len(allowed), len(denied),
                     DENIED_MEMBERS))

        # member-scoped datasets: the caller, then every member that shares its bills
        for account, member in [("self", None)] + [(names[m], m) for m in allowed]:
            for op in x_member_ops(account, member):
                self.check_scope(op, self.run_listing(op))

        # resource_bill_details with a non-default statistic_type (the caller only)
        op = x_op("x resource_bill_details st1 self", "ResRecords",
                  res_records_params(1) + account_params(None), "oneself")
        self.check_scope(op, self.run_listing(op))
        for day in ST2_DAYS:
            op = x_op("x resource_bill_details st2 %s" % day, "ResRecords",
                      res_records_params(2, day) + account_params(None), "oneself",
                      required={"MonthlyBillRes": {"bill_date"}})
            rows = self.run_listing(op)
            self.check_scope(op, rows)
            if rows is not None:
                dates = sorted({str(r.get("bill_date")) for r in rows if isinstance(r, dict)})
                rep.check(rows and dates == [day], op.label, "day",
                          "DAILY %s..%s: %d row(s), bill_date %s" % (day, day, len(rows), dates))

        # usage_95_summary for every combination; usage_95_details for its first resource
        for service, rtype, usages in USAGE_95_COMBINATIONS:
            for usage in usages:
                params = usage_params(service, rtype, usage)
                op = x_op(usage_label("summary", service, usage), "UsageSummary", params,
                          allow_empty="no resource billed with this usage type in %s" % CYCLE)
                rows = self.run_listing(op)
                if rows is None:
                    continue
                ids = [r.get("resource_id") if isinstance(r, dict) else None for r in rows]
                bad = ["row #%d: resource_id %r" % (i, rid) for i, rid in enumerate(ids)
                       if not isinstance(rid, str) or not rid]
                rep.check(not bad, op.label, "fanout",
                          "%d row(s), each with the resource_id usage_95_details fans out on"
                          % len(rows), bad)
                first = next((rid for rid in ids if isinstance(rid, str) and rid), None)
                if first:
                    rep.info("usage_95_details %s/%s: resource_id %s (1 of %d)"
                             % (service.rsplit(".", 1)[-1], usage, first, len(ids)))
                    self.run_listing(x_op(usage_label("details", service, usage), "UsageDetails",
                                          params + [("resource_id", first)]))

        for balance_type in ("BALANCE_TYPE_DEBIT", "BALANCE_TYPE_CREDIT"):
            op = x_op("x account_changes %s" % balance_type.rsplit("_", 1)[-1], "AccountChanges",
                      [("balance_type", balance_type), ("trade_time_begin", CYCLE_FIRST_DAY),
                       ("trade_time_end", CYCLE_LAST_DAY)])
            self.run_listing(op)

        for member in denied:
            self.run_denied(names[member], member)

    def run_denied(self, account, member):
        """A member refusing its bills: each member-scoped request gets 403 CBC.0151."""
        for op in x_member_ops(account, member):
            self.recorder.last = None
            try:
                resp = self.caller.call(self.client, op, op.make(0, op.limit))
                ok, summary = False, "HTTP %s, %s rows (want 403 CBC.0151)" % (
                    resp.status_code, len(getattr(resp, op.list_attr) or []))
            except Exception as e:   # SDK errors, but also e.g. an undecodable body
                ok = (isinstance(e, sdk_exc.ClientRequestException) and e.status_code == 403
                      and e.error_code == "CBC.0151")
                summary = "%s (want 403 CBC.0151)" % describe_exc(e)
            self.report.check(ok, op.label, "denied", summary)
            self.check_request(op, self.wire_problems(op, 0), 1)


class Aborted(BaseException):   # not an Exception: must not be caught as a failed call
    pass


def _on_sigterm(signum, _frame):
    raise Aborted("signal %d" % signum)


def main():
    signal.signal(signal.SIGTERM, _on_sigterm)   # so that `finally` stops the simulator
    report = Report()
    import importlib.metadata as md
    report.info("huaweicloudsdkbss %s, huaweicloudsdkcore %s, cycle %s"
                % (md.version("huaweicloudsdkbss"), md.version("huaweicloudsdkcore"), CYCLE))
    sim = None
    url = os.environ.get("HCBILL_URL")
    try:
        if url:
            report.info("using running simulator at %s" % url)
        else:
            binary = find_binary()
            sim = Simulator(binary)
            report.info("starting %s %s" % (binary, " ".join(SIM_ARGS)))
            try:
                url = sim.start()
            except (OSError, RuntimeError) as e:
                report.check(False, "simulator", "start", str(e), sim.log_tail())
                return finish(report)
            report.info("simulator listening on %s (log: %s)" % (url, sim.log.name))
        Conformance(url, report).run()
    except (Aborted, KeyboardInterrupt) as e:
        report.check(False, "run", "aborted", "interrupted (%s)" % (e or "Ctrl-C"))
    finally:
        if sim:
            sim.stop()
            if report.failed == 0:
                os.unlink(sim.log.name)       # keep the simulator log only when something failed
            else:
                report.info("simulator log kept at %s" % sim.log.name)
    return finish(report)


def finish(report):
    print("%d passed, %d failed" % (report.passed, report.failed), flush=True)
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
