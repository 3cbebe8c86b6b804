"""The official Huawei Cloud Python SDK paging one month of consumption records
(ListCustomerselfResourceRecords, the caller's own) sequentially, as a user's
script would: the baseline `cargo bench --bench perf` compares hcbill with.

usage: sdk_pager.py URL AK SK CYCLE  ->  prints {"records": n, "pages": p, "seconds": s}
"""

import json
import os
import sys
import time
import warnings

for _var in ("NO_PROXY", "no_proxy"):
    os.environ[_var] = ",".join(filter(None, [os.environ.get(_var, ""), "127.0.0.1,localhost"]))

from huaweicloudsdkcore.auth.credentials import GlobalCredentials  # noqa: E402
from huaweicloudsdkcore.http.http_config import HttpConfig  # noqa: E402
from huaweicloudsdkbss.v2 import BssClient  # noqa: E402
from huaweicloudsdkbss.v2 import model as M  # noqa: E402

warnings.filterwarnings("ignore", module=r"huaweicloudsdkcore.*")


def main():
    url, ak, sk, cycle = sys.argv[1:5]
    cfg = HttpConfig.get_default_config()
    cfg.timeout = (5, 60)
    client = (BssClient.new_builder()
              .with_credentials(GlobalCredentials(ak, sk, "0123456789abcdef0123456789abcdef"))
              .with_http_config(cfg)
              .with_endpoint(url)
              .build())
    start = time.monotonic()
    offset, total, records, pages = 0, None, 0, 0
    while total is None or offset < total:
        req = M.ListCustomerselfResourceRecordsRequest(
            cycle=cycle, statistic_type=3, include_zero_record=True,
            method="oneself", offset=offset, limit=1000)
        resp = client.list_customerself_resource_records(req)
        total = resp.total_count
        records += len(resp.fee_records or [])
        pages += 1
        offset += 1000
    print(json.dumps({"records": records, "pages": pages, "seconds": time.monotonic() - start}))


if __name__ == "__main__":
    main()
