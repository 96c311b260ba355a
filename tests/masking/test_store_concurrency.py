"""50 concurrent maskings of the same 200 new identifiers, from 5 processes of 10 threads each,
against the session's real redis-server."""

import json
import subprocess
import sys
import time

import pytest

from masking import store
from tests.live import ROOT, process_env

PROCESSES = 5
THREADS = 10

WORKER = """
import json, os, random, sys, threading, time

import django

django.setup()
from masking import masker
from masking.models import Tenant

go, ready, seed, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
ids = [f"i-{n:017x}" for n in range(100)] + [f"vpc-{n:017x}" for n in range(100)]
tenant = Tenant(slug="default", name="Default")  # unsaved: the TTL comes from the instance
results = [None] * threads


def work(i):
    order = ids[:]
    random.Random(seed * 1000 + i).shuffle(order)
    while not os.path.exists(go):
        time.sleep(0.0005)
    masked = masker.mask_texts(["\\n".join(order)], tenant, source="cli").texts[0]
    results[i] = dict(zip(order, masked.split("\\n")))


workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
for worker in workers:
    worker.start()
open(ready, "w").close()
for worker in workers:
    worker.join()
print(json.dumps(results))
"""


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)  # the workers read the policy tables of the test database
def test_concurrent_maskings_of_the_same_new_identifiers_agree_on_one_token_each(redis_client, tmp_path):
    go = tmp_path / "go"
    env = process_env(DJANGO_SETTINGS_MODULE="config.settings")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(go), str(tmp_path / f"ready-{n}"), str(n), str(THREADS)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(PROCESSES)
    ]
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"ready-{n}").exists() for n in range(PROCESSES)):
        assert time.monotonic() < deadline, "workers did not start"
        time.sleep(0.01)
    go.touch()
    outputs = [proc.communicate(timeout=60)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * PROCESSES

    results = [mapping for output in outputs for mapping in json.loads(output)]
    assert len(results) == PROCESSES * THREADS
    first = results[0]
    assert all(mapping == first for mapping in results)
    assert len(first) == 200
    assert len(set(first.values())) == 200  # one token per identifier, one identifier per token

    for original, token in first.items():
        assert redis_client.get(store.mask_key(original)) == token.encode()
        assert redis_client.get(store.unmask_key(token)) == original.encode()
    assert len(redis_client.keys("aws:mask:*")) == 200
    assert len(redis_client.keys("aws:unmask:*")) == 200
    # No number was handed out and thrown away: each prefix counted exactly its 100 identifiers.
    assert redis_client.get("aws:seq:EC2") == b"100"
    assert redis_client.get("aws:seq:VPC") == b"100"
    counts = redis_client.hgetall(store.COUNTS_KEY)
    assert counts[b"total_mappings"] == b"200"
    assert counts[b"mask_operations"] == str(PROCESSES * THREADS).encode()
